"""The CredID trusted third party: vendor registry, seed grants, replay guard and audit log storage."""
