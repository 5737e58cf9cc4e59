"""``kdtune config show CONFIG``: the resolved, validated study configuration.

What the study would store and run: the file with its ``--set`` overrides applied, every
default filled in, the objectives resolved for the teacher's number of classes, and the whole
complete check passed (teacher, data, cross-field rules), as ``kdtune create`` checks it.
The storage URL is printed with its password masked. Like spaCy's ``debug config`` or
Lightning's ``--print_config``.
"""

from __future__ import annotations

import json

import typer
import yaml

from .common import ConfigArg, JsonOpt, SetOpt, StorageOpt, print_json

config_app = typer.Typer(help="Show a study config as kdtune resolves it.",
                         no_args_is_help=True)


@config_app.command("show")
def config_show_cmd(config: ConfigArg, overrides: SetOpt = None, storage: StorageOpt = None,
                    as_json: JsonOpt = False) -> None:
    """Print the resolved, validated configuration (YAML; --json for JSON)."""
    from kdtune.storage import describe

    from ..service import load_study_config

    cfg = load_study_config(config, overrides or [], storage)
    data = json.loads(cfg.model_dump_json())
    if data.get("storage") is not None:
        data["storage"] = describe(data["storage"])
    if as_json:
        print_json(data)
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
