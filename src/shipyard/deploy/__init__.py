"""Scale-out export: the objects a cluster runs (Kubernetes, KServe, Argo), container build contexts, GitOps commits.

Each module builds plain data (dicts, file contents) from what the service hands it; nothing here reads
the store. Shipyard writes these objects and keeps governing them; it never schedules anything itself.
"""
