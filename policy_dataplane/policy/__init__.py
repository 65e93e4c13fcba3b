"""The policy model: Kubernetes and Calico objects, selectors, the world, the oracle and its explanations."""
