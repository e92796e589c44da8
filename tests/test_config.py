"""Configuration: flags beat environment beat file beat defaults, and bad values are refused."""
import pathlib

import pytest

from jobjoker import checkout
from jobjoker.config import load_config
from jobjoker.errors import StartupError


def test_defaults_in_a_checkout():
    root = pathlib.Path(__file__).resolve().parent.parent
    assert checkout.ROOT == str(root)
    config = load_config({}, environ={})
    assert config.host == "127.0.0.1" and config.port == 8080
    assert config.data_dir == root / "db"
    assert config.workers_dir == root / "workers"
    assert config.database_url == "sqlite:///%s" % (root / "db" / "jobjoker.sqlite3")
    assert config.stop_grace == 10.0


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path):
    config_file = tmp_path / "jobjoker.toml"
    config_file.write_text('port = 7000\nhost = "0.0.0.0"\nstop_grace = 3\nnode = "file"\n')
    environ = {"JOBJOKER_PORT": "7100", "JOBJOKER_HOST": "::1", "JOBJOKER_CONFIG":
               str(config_file)}
    config = load_config({"port": "7200"}, environ=environ)
    assert config.port == 7200  # flag
    assert config.host == "::1"  # environment
    assert config.stop_grace == 3.0  # file
    assert config.node == "file"
    assert config.max_body_size == 10 * 1024 * 1024  # default


def test_a_jobjoker_table_in_the_file_works_too(tmp_path):
    config_file = tmp_path / "c.toml"
    config_file.write_text("[jobjoker]\nport = 9001\n")
    assert load_config({}, environ={}, config_file=str(config_file)).port == 9001


def test_paths_are_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({"data_dir": "data", "workers_dir": "w"}, environ={})
    assert config.data_dir == tmp_path / "data"
    assert config.workers_dir == tmp_path / "w"
    assert isinstance(config.data_dir, pathlib.Path)


@pytest.mark.parametrize("flags, environ, message", [
    ({"port": "eighty"}, {}, "option --port: port='eighty' is not a valid int"),
    ({}, {"JOBJOKER_PORT": "70000"}, "port must be between 0 and 65535"),
    ({}, {"JOBJOKER_STOP_GRACE": "-1"}, "stop_grace must not be negative"),
    ({"node_lease_ttl": "15"}, {}, r"node_lease_ttl \(15 s\) must be at least twice "
                                   r"node_heartbeat \(10 s\)"),
    ({"node_heartbeat": "0"}, {}, "which must be more than 0"),
])
def test_bad_values_are_refused_with_what_to_fix(flags, environ, message):
    with pytest.raises(StartupError, match=message):
        load_config(flags, environ=environ)


def test_bad_config_files_are_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(StartupError, match="not valid TOML"):
        load_config({}, environ={}, config_file=str(bad))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1\n")
    with pytest.raises(StartupError, match=r"unknown option.*prot \(did you mean port\?\)"):
        load_config({}, environ={}, config_file=str(unknown))
    with pytest.raises(StartupError, match="does not exist"):
        load_config({}, environ={}, config_file=str(tmp_path / "missing.toml"))


@pytest.mark.parametrize("flags, message", [
    ({"log_level": "chatty"}, "log_level must be one of DEBUG, INFO, WARNING, ERROR"),
    ({"database": "oracle://x/y"}, "the scheme must be one of"),
    ({"database": "mysql://root@localhost:3306"}, "names no database"),
    ({"database": "mysql://u:secret@h/"}, "names no database"),
])
def test_bad_log_levels_and_database_urls_are_refused(flags, message):
    with pytest.raises(StartupError, match=message) as caught:
        load_config(flags, environ={})
    assert "secret" not in caught.value.message


def test_log_level_is_case_insensitive():
    assert load_config({"log_level": "debug"}, environ={}).log_level == "DEBUG"


def test_database_credentials_are_percent_decoded():
    from jobjoker import models
    db = models.make_database("mysql://us%40er:p%2Fa%3Fs%23s@db.example:3307/jobs")
    assert db.connect_params["user"] == "us@er"
    assert db.connect_params["passwd"] == "p/a?s#s"  # PyMySQL's name for it
    assert db.database == "jobs"


def test_max_log_bytes_takes_sizes_with_units_and_refuses_nonsense():
    assert load_config({"max_log_bytes": "512M"}, environ={}).max_log_bytes == 512 << 20
    assert load_config({}, environ={"JOBJOKER_MAX_LOG_BYTES": "2GiB"}).max_log_bytes == 2 << 30
    assert load_config({}, environ={}).max_log_bytes == 1 << 30
    assert load_config({"max_log_bytes": "0"}, environ={}).max_log_bytes == 0
    with pytest.raises(StartupError, match="max_log_bytes.*size in bytes"):
        load_config({"max_log_bytes": "lots"}, environ={})
    with pytest.raises(StartupError, match="must not be negative"):
        load_config({"max_log_bytes": "-1M"}, environ={})


def test_the_node_lease_timing_is_a_setting():
    config = load_config({"node_heartbeat": "2", "node_lease_ttl": "5"}, environ={})
    assert (config.node_heartbeat, config.node_lease_ttl) == (2.0, 5.0)

