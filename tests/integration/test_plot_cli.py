"""``blpopq-collect --plot`` on real results: a daemon serves a batch on a private
redis-server; the picture is written, stdout names it and holds nothing else; options that
make no sense with a picture are refused with exit 2, before anything is written."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from blpopq.embedded import RedisServer

from ..helpers import Daemon, run_cli
from .test_batches import collect, instructions, produce, target


def test_plot_writes_the_batch_timeline_and_names_the_file(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    path = instructions(tmp_path, "six.txt", ["comun", "vip", "alto", "vip", "comun", "alto"])
    with Daemon("--workers", "2", "--block-timeout", "0.5", *target(redis_server, namespace)):
        batch = produce(redis_server, namespace, path)
        png = tmp_path / "timeline.png"
        out, _ = collect(redis_server, namespace, "--batch", "last", "--expect", "6",
                         "--quiet", "--plot", str(png))  # fmt: skip
    assert out == f"{png}\n"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = tmp_path / "timeline.svg"
    out, _ = collect(redis_server, namespace, "--batch", batch, "--plot", str(svg))
    assert out == f"{svg}\n"
    text = " ".join(ET.parse(svg).getroot().itertext())
    assert f"batch {batch}, 6 tasks" in text and "the batch's view" in text


def test_plot_refuses_follow_drain_and_other_suffixes(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    picture = str(tmp_path / "p.png")
    cases = [
        (["--plot", picture, "--follow"], "cannot be given --follow"),
        (["--plot", picture, "--drain"], "cannot be given --drain"),
        (["--plot", str(tmp_path / "p.pdf")], "must end in .svg or .png"),
        (["--plot", picture, "--summary"], "not both"),
    ]
    for args, message in cases:
        done = run_cli("blpopq-collect", *args, *target(redis_server, namespace))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []
