"""mParticle (Webhook output): Authorization value check and event-batch mapping.

``sign`` gives the headers mParticle would send for a configured Authorization value.
"""

from adapters.mparticle.adapter import MParticleAdapter, sign

__all__ = ["MParticleAdapter", "sign"]
