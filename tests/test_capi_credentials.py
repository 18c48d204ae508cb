"""The Proxmox credentials Secret of the Cluster API cluster: rendered with sops
(proxmox-credentials.sops.yaml) or created by capi:apply from secrets.sops.yaml (real sops and
go-task), always with an explicit `insecure`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import model, render, settings
from generator.options import Options
from generator.pipeline import render_tree
from helpers.capi import (
    CAPI_DIR,
    CLUSTER_YAML,
    CREDENTIALS,
    KUSTOMIZATION,
    TASKFILE,
    capi_only,
    capi_tasks,
    installed,
    load_docs,
    read_inputs,
    recorder,
    render_context,
    run_task,
    stub,
    with_path,
    write_inputs,
)


def test_apply_passes_the_sops_token_to_the_secret(
    example_copy: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real sops and go-task: capi:apply creates the credentials Secret from the decrypted
    token of secrets.sops.yaml (kubectl is a stub that records its arguments)."""
    from pyrage import x25519

    from generator.commands.init import sops_config
    from generator.sops import SOPS_CONFIG, encrypt

    task, sops = installed("task"), installed("sops")
    identity = x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(f"{identity}\n", encoding="utf-8")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    write_inputs(config, capi_only(cluster), nodes)
    token_id, token_secret = "capi@pve!t" + os.urandom(4).hex(), str(uuid.uuid4())
    plaintext = f'proxmox_api_token_id: "{token_id}"\nproxmox_api_token_secret: "{token_secret}"\n'
    (config / "secrets.sops.yaml").write_bytes(
        encrypt(
            plaintext.encode(),
            "secrets.sops.yaml",
            age_recipients=[str(identity.to_public())],
            cwd=config,
        )
    )
    (config / SOPS_CONFIG).write_bytes(sops_config(str(identity.to_public())))
    rendered = render_tree(Options(config))
    (kustomization,) = load_docs(rendered.files[KUSTOMIZATION])
    assert [f"{CAPI_DIR}/{r}" for r in kustomization["resources"]] == [CLUSTER_YAML, CREDENTIALS]
    assert CREDENTIALS in rendered.files
    for path in (TASKFILE, CLUSTER_YAML):
        assert token_secret.encode() not in rendered.files[path]
    # Where render puts it: the tasks find every file from the Taskfile's own directory.
    (config / TASKFILE).parent.mkdir(parents=True)
    (config / TASKFILE).write_bytes(rendered.files[TASKFILE])
    (config / CAPI_DIR).mkdir(parents=True)
    (config / CLUSTER_YAML).write_bytes(rendered.files[CLUSTER_YAML])
    (config / "management.kubeconfig").write_text("", encoding="utf-8")
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    recorder(bin_dir, "kubectl", log, append=True)
    # The Image Factory: capi:apply registers the schematic first; no test reaches the network.
    schematic_id = rendered.context["schematic"]["id"]
    stub(bin_dir, "curl", f'printf \'{{"id":"{schematic_id}"}}\'')
    (bin_dir / "sops").symlink_to(sops)
    env = with_path(bin_dir)
    result = run_task(task, config / TASKFILE, "capi:apply", env)
    assert result.returncode == 0, result.stderr
    args = log.read_text(encoding="utf-8").splitlines()
    assert f"--from-literal=token={token_id}" in args
    assert f"--from-literal=secret={token_secret}" in args
    assert f"--from-literal=url={cluster['proxmox_endpoint']}" in args
    assert "--from-literal=insecure=false" in args
    assert f"--filename={config / CLUSTER_YAML}" in args


@pytest.mark.parametrize("insecure", [False, True])
def test_credentials_secret_says_insecure_explicitly(
    insecure: bool, example_copy: Callable[[str], Path]
) -> None:
    """CAPMOX skips TLS verification when `insecure` is missing (pkg/scope/cluster.go), so the
    Secret always carries it, as the string CAPMOX compares: true or false."""
    cluster, nodes = read_inputs(example_copy("multi-host"))
    cluster["proxmox_insecure"] = insecure
    secrets = {"proxmox_api_token_id": "capi@pve!t", "proxmox_api_token_secret": "s3cret"}
    context = model.build(cluster, nodes, secrets, has_secrets_file=True)
    files = render.render(context, settings.load())
    (secret,) = load_docs(files[CREDENTIALS])
    assert secret["stringData"]["insecure"] == ("true" if insecure else "false")
    assert secret["stringData"]["url"] == context["proxmox_endpoint"]
    _, taskfile = render_context(cluster, nodes)
    apply = capi_tasks(taskfile)["capi:apply"]
    assert apply["env"]["CAPI_PROXMOX_INSECURE"] == ("true" if insecure else "false")
