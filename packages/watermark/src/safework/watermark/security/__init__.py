"""Security primitives of the CredID services: mTLS certificates, signed requests, replay, rate limits."""
