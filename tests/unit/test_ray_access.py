"""The banner's line on getting into the Ray dashboard (token authentication)."""

from pathlib import Path

from runtime.ray_access import dashboard_access


def test_the_banner_says_where_the_dashboard_token_is_and_never_prints_it(tmp_path: Path):
    token = tmp_path / "auth_token"
    token.write_text("s3cret")
    line = dashboard_access({"RAY_AUTH_MODE": "token"}, token)
    assert str(token) in line and "ray get-auth-token" in line and "s3cret" not in line
    assert "RAY_AUTH_TOKEN environment" in dashboard_access({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "s3cret"}, token)
    assert "s3cret" not in dashboard_access({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "s3cret"}, token)
    assert "/etc/ray-token" in dashboard_access({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/etc/ray-token"}, token)
    # Ray turns it on by default when a token file exists, unless told otherwise
    assert "asks for" in dashboard_access({}, token)
    assert "no token needed" in dashboard_access({"RAY_AUTH_MODE": "disabled"}, token)
    assert "no token needed" in dashboard_access({}, tmp_path / "missing")


def test_the_up_banner_says_how_to_get_into_the_dashboard(capsys, monkeypatch):
    from engine.settings import EngineSettings
    from runtime.cli import _print_banner

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    _print_banner(EngineSettings.model_validate({"database_url": "postgresql://u:pw@h/db", "redis_url": "redis://h"}), 1.5)
    out = capsys.readouterr().out
    dashboard = next(line for line in out.splitlines() if "dashboard" in line)
    assert "http://127.0.0.1:8265" in dashboard and "ray get-auth-token" in dashboard
    assert "pw" not in out  # the database password is redacted


def test_the_up_banner_says_where_both_metrics_endpoints_are(capsys, monkeypatch):
    from engine.settings import EngineSettings
    from runtime import ray_access
    from runtime.cli import _print_banner
    from runtime.ray_access import ray_metrics_url

    # Ray not up here (in a whole suite the session's Ray is, on a port of its own choosing)
    monkeypatch.setattr(ray_access, "_this_node", lambda: None)
    _print_banner(EngineSettings.model_validate({"ray": {"metrics_export_port": 9266}, "api": {"port": 8123}}), 1.0)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("metrics"))
    assert "http://127.0.0.1:8123/metrics (API)" in line and "http://127.0.0.1:9266/metrics (Ray)" in line
    # Ray not up: the configured port, if any; a joined cluster's port is never ours to guess
    assert ray_metrics_url(0) is None and ray_metrics_url(8266, joined=True) is None
    # Ray up: the port it bound, whatever was configured
    monkeypatch.setattr(ray_access, "_this_node", lambda: {"MetricsExportPort": 46001})
    assert ray_metrics_url(0) == "http://127.0.0.1:46001/metrics" == ray_metrics_url(8266)


def test_the_up_banner_points_at_the_console_and_says_whether_keys_are_needed(capsys):
    from engine.settings import EngineSettings
    from runtime.cli import _print_banner

    def lines(api: dict) -> dict[str, str]:
        _print_banner(EngineSettings.model_validate({"api": api}), 1.0)
        out = capsys.readouterr().out.splitlines()
        return {line[:13].strip(): line[13:] for line in out if line.startswith("  ")}

    local = lines({"port": 8123})
    assert local["console"] == "http://127.0.0.1:8123/"
    assert local["API keys"].startswith("not needed")
    assert lines({"host": "0.0.0.0"})["API keys"].startswith("required")
    assert lines({"auth": "off"})["API keys"].startswith("off")
    assert "console" not in lines({"console": False})
