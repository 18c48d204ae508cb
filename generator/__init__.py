"""clustergen: Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml."""

__version__ = "0.1.0"
