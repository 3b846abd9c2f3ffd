"""`beidou demo`: the whole loop, live, with simulated policyholders and a simulated care agent."""
