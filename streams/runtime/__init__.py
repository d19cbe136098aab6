"""The worker's runtime around the pure core: durable state (``changelog``) and the one
checkpoint every lane's commit goes through (``checkpoint``)."""
