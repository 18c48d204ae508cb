"""sops inside a host repo: one age key, creation rules where the host keeps them."""

from __future__ import annotations

from pathlib import Path

from generator import secrets
from helpers import host_repos
from helpers.tools import clustergen, run_captured, tool


def makejinja(env: dict[str, str], repo: Path) -> None:
    done = run_captured([tool("makejinja")], cwd=repo, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_init_in_a_subdirectory_of_cluster_template_reuses_the_host_key_and_template(
    reference_dir: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    repo = host_repos.build(reference_dir, host_repos.CLUSTER_TEMPLATE, tmp_path / "repo")
    makejinja(env, repo)  # the host's own render: .sops.yaml from templates/config/.sops.yaml.j2
    rendered_before = (repo / ".sops.yaml").read_bytes()
    host_public = (repo / "age.key").read_text().splitlines()[0].split(": ", 1)[1]
    template = repo / "templates/config/.sops.yaml.j2"
    template_before = template.read_text()

    done = clustergen("-C", "provision", "init", "--example", "homelab", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    assert not (repo / "provision/age.key").exists()  # no second key
    assert not (repo / "provision/.sops.yaml").exists()
    assert (repo / ".sops.yaml").read_bytes() == rendered_before  # never the rendered file
    assert "kept age.key (using age.key)" in done.stdout
    assert "updated templates/config/.sops.yaml.j2" in done.stdout
    assert "task configure" in done.stdout
    # The rules went first into the host's template, with the host's own age expression.
    text = template.read_text()
    assert text.endswith(template_before.split("creation_rules:\n", 1)[1])
    assert "  - path_regex: ^provision/secrets\\.sops\\.yaml$\n" in text
    assert text.count("age: \"#{ age_key('public') }#\"") == 4
    # The secrets input is encrypted for the host's key only.
    encrypted = (repo / "provision/secrets.sops.yaml").read_text()
    assert host_public in encrypted and encrypted.count("recipient:") == 1

    makejinja(env, repo)  # the host's next `task configure` renders the rules into .sops.yaml
    rendered = (repo / ".sops.yaml").read_text()
    assert f'age: "{host_public}"' in rendered and "^provision/secrets" in rendered

    # Running init again changes nothing: the rules are there, the key is the host's.
    again = clustergen("-C", "provision", "init", cwd=repo, env=env)
    assert again.returncode == 0, again.stderr
    assert "has clustergen's creation rules" in again.stdout
    assert template.read_text() == text

    # A render with capi encrypts the Secret by the host-rendered rule and decrypts the input
    # with the host's age.key, without SOPS_AGE_KEY_FILE.
    cluster = repo / "provision/cluster.yaml"
    cluster.write_text(cluster.read_text().replace("  - ansible\n", "  - ansible\n  - capi\n"))
    render = clustergen("-C", "provision", "render", cwd=repo, env=env)
    assert render.returncode == 0, render.stderr
    secret = (repo / "provision/infrastructure/capi/proxmox-credentials.sops.yaml").read_text()
    assert host_public in secret and "kind: Secret" in secret
    assert secrets.PLACEHOLDERS["proxmox_api_token_secret"] not in secret
    check = clustergen("-C", "provision", "check", cwd=repo, env=env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_sops_age_key_file_wins_over_age_key(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    host_repos.git(repo, "init", "-q")
    host_repos.age_identity(repo / "age.key")
    chosen = host_repos.age_identity(tmp_path / "mine.key")
    done = clustergen("-C", "sub", "init", cwd=repo, env=env, age_key=tmp_path / "mine.key")
    assert done.returncode == 0, done.stderr
    assert chosen in (repo / "sub/.sops.yaml").read_text()
    assert not (repo / "sub/age.key").exists()


def test_a_hand_written_sops_config_is_never_edited(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    (repo / "provision").mkdir(parents=True)
    host_repos.git(repo, "init", "-q")
    public = host_repos.age_identity(repo / "age.key")
    config = repo / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - path_regex: ^talos/\n    age: {public}\n")
    before = config.read_bytes()
    done = clustergen("-C", "provision", "init", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    assert config.read_bytes() == before
    assert (
        "add clustergen's creation rules at the top of `creation_rules:` in .sops.yaml"
        in done.stdout
    )
    assert "  - path_regex: ^provision/secrets\\.sops\\.yaml$\n" in done.stdout
    assert f"    age: {public}\n" in done.stdout
    # The printed lines work: pasted in, the capi Secret gets encrypted.
    lines = done.stdout.split("in .sops.yaml:\n", 1)[1].split("\nkept", 1)[0].split("\nnext:", 1)[0]
    config.write_text(
        "creation_rules:\n" + lines.rstrip("\n") + "\n" + before.decode().split("\n", 1)[1]
    )
    cluster = repo / "provision/cluster.yaml"
    # One controller: a CAPI rollout needs a spare pool address (issue 15).
    cluster.write_text(
        cluster.read_text() + "provisioners: [capi]\ncapi_spare_addresses: [192.168.22.11]\n"
    )
    render = clustergen("-C", "provision", "render", cwd=repo, env=env)
    assert render.returncode == 0, render.stderr


def test_before_the_host_rendered_sops_yaml_init_still_uses_its_template(
    reference_dir: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """A fresh cluster-template clone: .sops.yaml is not rendered yet. init must not create
    one (the host's render would overwrite it) but put its rules into the template."""
    repo = host_repos.build(reference_dir, host_repos.CLUSTER_TEMPLATE, tmp_path / "repo")
    assert not (repo / ".sops.yaml").exists()
    done = clustergen("init", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    assert not (repo / ".sops.yaml").exists()
    assert "updated templates/config/.sops.yaml.j2" in done.stdout
    text = (repo / "templates/config/.sops.yaml.j2").read_text()
    assert "  - path_regex: ^secrets\\.sops\\.yaml$\n" in text
    assert "  - path_regex: ^infrastructure/capi/.*\\.sops\\.ya?ml$\n" in text
    # The host's own rules still come after and still match its files.
    makejinja(env, repo)
    rendered = (repo / ".sops.yaml").read_text()
    assert rendered.index("^secrets") < rendered.index("talos/.*")


def test_a_team_sops_config_with_the_rules_encrypts_for_every_recipient(
    tmp_path: Path, env: dict[str, str]
) -> None:
    from generator.commands.init import sops_config

    repo = tmp_path / "repo"
    repo.mkdir()
    host_repos.git(repo, "init", "-q")
    mine = host_repos.age_identity(repo / "age.key")
    teammate = host_repos.age_identity(tmp_path / "teammate.key")
    (repo / ".sops.yaml").write_bytes(sops_config(f"{mine},{teammate}"))
    done = clustergen("init", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    encrypted = (repo / "secrets.sops.yaml").read_text()
    assert mine in encrypted and teammate in encrypted


def test_age_key_of_the_config_dir_decrypts_outputs_elsewhere_without_churn(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """No git, no SOPS_AGE_KEY_FILE, age.key beside the inputs, output root elsewhere: the
    input and the existing Secret decrypt with that key, so a second render changes nothing."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    done = clustergen("init", "--example", "homelab", cwd=cfg, env=env)
    assert done.returncode == 0, done.stderr
    cluster = cfg / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("  - ansible\n", "  - ansible\n  - capi\n"))
    out = tmp_path / "out"
    first = clustergen("-C", "cfg", "render", "-o", "out", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    secret = (out / "infrastructure/capi/proxmox-credentials.sops.yaml").read_bytes()
    second = clustergen("-C", "cfg", "render", "-o", "out", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout and "could not decrypt" not in second.stderr
    assert (out / "infrastructure/capi/proxmox-credentials.sops.yaml").read_bytes() == secret
