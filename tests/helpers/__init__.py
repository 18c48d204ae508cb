"""What the tests share, one home each (test modules import from here, never from conftest).

- paths: the repository, the examples, the fixtures, the reference data, the built tools.
- tools: finding a tool (skip locally, fail in CI), running it, running clustergen, git.
- session: the environment every test runs in (set once by conftest's pytest_configure).
- data: YAML data as plain Python, writing and loading inputs and output trees.
- sops: a real-sops-encrypted secrets file, an environment without the user's sops settings.
- ansible: the environment the real Ansible tools run in.
- realtools, packer_compat: the real OpenTofu and Packer, offline.
- host_repos: the host repos (cluster-template, talos-cluster) built from the reference.
- taskfile_harness: the rendered Taskfile run by go-task against recording stand-in tools.
"""
