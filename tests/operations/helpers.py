"""Helpers of the engine tests: a scripted node type and shortcuts."""

from flows.nodes import base as node_base


class Script(node_base.NodeType):
    """Test-only node type (registered in this process only): fails, defers or branches on cue."""

    type = "test_script"
    label = "Scripted (tests)"

    def execute(self, ctx):
        cfg = ctx.config
        for line in cfg.get("log_lines", []):
            ctx.log(line)
        if ctx.attempt <= int(cfg.get("fail_attempts", 0)) or cfg.get("fail"):
            raise node_base.NodeFailed(cfg.get("message", "scripted failure"))
        if cfg.get("defer") and not ctx.state.get("deferred"):
            raise node_base.NodeDeferred(float(cfg["defer"]), {"deferred": True, "n": 1})
        if cfg.get("crash"):
            raise RuntimeError("executor bug")
        return node_base.NodeResult(output=cfg.get("output", {}), branch=cfg.get("branch"))


node_base.get("noop")  # load the real registry first, then add ours
node_base.REGISTRY.setdefault("test_script", Script())


def script(name, **config):
    """A node spec of the scripted type."""
    extra = {k: config.pop(k) for k in ("retries", "retry_interval", "timeout") if k in config}
    return {"name": name, "type": "test_script", "config": config, **extra}


def latest(run) -> dict:
    """{node name: latest NodeRun} of a run."""
    from operations.models import NodeRun

    return {nr.node_name: nr for nr in NodeRun.objects.filter(run=run, is_latest=True)}
