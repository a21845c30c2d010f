<?php
/** Registers the Shelfwise_Recommendations module (app/code/Shelfwise/Recommendations). */
\Magento\Framework\Component\ComponentRegistrar::register(
    \Magento\Framework\Component\ComponentRegistrar::MODULE,
    'Shelfwise_Recommendations',
    __DIR__
);
