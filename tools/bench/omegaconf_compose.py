#!/usr/bin/python3
"""The Python peer of bench_config: the same composition with OmegaConf 2.2.2.

    omegaconf_compose.py PLAN.json ITERATIONS OURS.yaml
PLAN lists the configs in merge order with their packages (Hydra's own configs included). Each
iteration loads every file, drops its `defaults`, embeds it at its package, merges it, applies the
same two overrides as the benchmark, drops `hydra` and resolves (OmegaConf.resolve, what
`--cfg job --resolve` does). Prints
`ms_per_iteration X` and `identical yes|no` (to_yaml compared with bignlp's output).
"""
import json
import math
import sys
import time

from omegaconf import OmegaConf

OmegaConf.register_new_resolver("multiply", lambda x, y: x * y)
OmegaConf.register_new_resolver("divide_ceil", lambda x, y: int(math.ceil(x / y)))
OmegaConf.register_new_resolver("divide_floor", lambda x, y: int(math.floor(x / y)))


def compose(plan):
    cfg = OmegaConf.create()
    for f in plan["files"]:
        loaded = OmegaConf.load(f["path"])
        if "defaults" in loaded:
            del loaded["defaults"]
        if f["package"]:
            wrapped = OmegaConf.create()
            OmegaConf.update(wrapped, f["package"], loaded, merge=False)
            loaded = wrapped
        cfg.merge_with(loaded)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.update(cfg, "stage0.trainer.num_nodes", 4, merge=True)
    OmegaConf.update(cfg, "stage1.model.extra", "${stage0.model.hidden_size}", merge=True, force_add=True)
    OmegaConf.set_struct(cfg, False)
    del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg


def main():
    plan = json.load(open(sys.argv[1]))
    iters = int(sys.argv[2])
    cfg = compose(plan)
    t0 = time.perf_counter()
    for _ in range(iters):
        cfg = compose(plan)
    ms = (time.perf_counter() - t0) * 1000 / iters
    ours = open(sys.argv[3]).read()
    print("ms_per_iteration %.3f" % ms)
    print("identical %s" % ("yes" if OmegaConf.to_yaml(cfg) == ours else "no"))


if __name__ == "__main__":
    main()
