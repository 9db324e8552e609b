"""The vendor side of the CredID protocol: grants received from the TTP, generation and extraction."""
