"""deploy/docker-compose.yml, Dockerfile, .env.example and .drone.yml, checked without a container engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"

TRAKR_SERVICES = {"ein", "julia", "hermes", "spike", "jet-rutgers-nb", "jet-sim", "fcm-emulator"}
EXPECTED = TRAKR_SERVICES | {"postgres", "redis", "migrate", "prometheus", "grafana", "fluentd"}
ONE_SHOT = {"migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_every_part_of_the_stack_is_there(services: dict[str, Any]) -> None:
    assert set(services) == EXPECTED


def test_long_running_services_have_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), (
            f"{name} has no healthcheck"
        )
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_one_shot_services_gate_the_others(services: dict[str, Any]) -> None:
    for name in TRAKR_SERVICES - {"fcm-emulator"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_depends_on_names_real_services_with_known_conditions(services: dict[str, Any]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in conditions, (name, dependency)
            if spec["condition"] == "service_healthy":
                assert services[dependency].get("healthcheck"), (
                    f"{dependency} has no healthcheck to wait for"
                )


def test_every_service_has_cpu_and_memory_limits_and_a_restart_policy(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert re.fullmatch(r"\d+[MG]", limits["memory"]), name
        assert service["restart"] in ("no", "always", "unless-stopped", "on-failure"), name


def test_logs_go_to_fluentd(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name == "fluentd":
            continue  # it cannot ship its own lines to itself
        logging = service["logging"]
        assert logging["driver"] == "fluentd", name
        assert logging["options"]["fluentd-address"].endswith(":24224"), name


def test_dev_profile_holds_the_emulator_and_the_simulator(services: dict[str, Any]) -> None:
    assert services["fcm-emulator"]["profiles"] == ["dev"]
    assert services["jet-sim"]["profiles"] == ["dev"]
    for name in EXPECTED - {"fcm-emulator", "jet-sim"}:
        assert "profiles" not in services[name], name


def test_jet_runs_replicas(services: dict[str, Any]) -> None:
    assert services["jet-rutgers-nb"]["deploy"]["replicas"] >= 2
    command = services["jet-rutgers-nb"]["command"]
    assert command[0] == "trakr-jet" and "--scraper-name=rutgers-nb" in command and "--" in command


def test_redis_is_persistent_and_has_a_password(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_mounted_files_exist(compose: dict[str, Any], services: dict[str, Any]) -> None:
    named = set(compose.get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert source.startswith("."), (
                f"{name}: {volume} is neither a named volume nor a relative path"
            )
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"


def test_secrets_are_files_outside_git(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert services["hermes"]["secrets"] == ["fcm_service_account"]
    secret = compose["secrets"]["fcm_service_account"]["file"]
    default = re.fullmatch(r"\$\{FCM_SERVICE_ACCOUNT_FILE:-(.+)\}", secret)
    assert default, secret
    directory = (DEPLOY / default.group(1)).parent
    assert (directory / ".gitignore").read_text().splitlines()[1] == "*"


def test_every_required_variable_is_in_env_example() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?])?", text))
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z_]+=", line)
    )
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    assert required <= set(example), required - set(example)
    assert used <= set(example) | {"TRAKR_IMAGE"}, used - set(example)
    for name in required:
        assert example[name] == "change-me", f"{name}: .env.example must not hold a real secret"


def test_trakr_services_use_the_one_image_and_the_ports_of_the_design(
    services: dict[str, Any],
) -> None:
    ports = {
        "ein": "9102",
        "julia": "9103",
        "hermes": "9104",
        "spike": "9876",
        "jet-rutgers-nb": "9101",
    }
    for name in TRAKR_SERVICES | ONE_SHOT:
        assert services[name]["image"] == "${TRAKR_IMAGE:-trakr:latest}", name
        assert services[name]["init"] is True, name
    for name, port in ports.items():
        assert f":{port}/" in " ".join(services[name]["healthcheck"]["test"]), name


def test_dockerfile_is_slim_non_root_and_ships_the_migrations() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "COPY sql ./sql" in text and "COPY services ./services" in text
    # trakr.migrate looks for <repo>/sql/migrations next to services/: the install is editable.
    assert "pip install --no-deps -e ." in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".env" in ignored and "sql" not in ignored


def test_drone_pipeline_lints_tests_and_checks_deploy() -> None:
    pipeline = yaml.safe_load((REPO / ".drone.yml").read_text())
    assert {s["name"] for s in pipeline["services"]} == {"postgres", "redis"}
    commands = "\n".join(c for step in pipeline["steps"] for c in step.get("commands", []))
    assert "ruff check" in commands and "pytest -q" in commands
    assert "promtool test rules deploy/prometheus/alerts_test.yml" in commands
    assert "pytest -q tests/deploy" in commands


def test_example_scrapers_file_is_valid_and_its_data_paths_resolve() -> None:
    from trakr.up.config import load_scrapers

    scrapers = {spec.name: spec for spec in load_scrapers(DEPLOY / "scrapers.toml")}
    assert set(scrapers) == {"rutgers-nb", "sim"} and scrapers["rutgers-nb"].replicas == 2
    rutgers = scrapers["rutgers-nb"]
    for path in (arg for arg in rutgers.command if arg.endswith((".json", ".json.gz"))):
        # The sample data lives beside the repository (../shared/realdata), not in it.
        resolved = (DEPLOY / path).resolve()
        assert resolved.parent.name == "realdata" and resolved.parent.parent.name == "shared", (
            resolved
        )
        if resolved.parent.exists():
            assert resolved.exists(), resolved
