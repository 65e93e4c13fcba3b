"""Kubernetes Services (ClusterIP, kube-proxy-style DNAT), cluster DNS and egress by name (ExternalService).

Pure logic (objects, endpoints, nft rendering, DNS zone, the egress-operator's objects) lives apart from
what touches the kernel (`services.program`) and the lab's one process that answers DNS and proxies gateways
(`services.daemon`).
"""
