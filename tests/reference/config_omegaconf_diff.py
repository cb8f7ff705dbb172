#!/usr/bin/python3
"""Differential test of bignlp's config core against OmegaConf 2.2.2 (Debian's python3-omegaconf).

For every case (hand-written YAML texts, then configs from a seeded random generator of nested
dicts/lists, typed scalars, interpolations and resolver calls) it writes conf/config.yaml and
compares what `bignlp --cfg job --resolve` prints with what Hydra would print for the same file:
OmegaConf.load, OmegaConf.resolve, OmegaConf.to_yaml (text equality covers value AND type: '1',
1 and 1.0 print differently). Cases where OmegaConf raises must make bignlp fail, and the other way
round. Some cases also compare `-p KEY` (OmegaConf.select) with and without --resolve.

    config_omegaconf_diff.py --bignlp build-cpu/bin/bignlp [--random N] [--seed S] [--keep DIR]
Exit 0: all agree; 1: a difference (each printed with its YAML); 77: OmegaConf is not installed.
"""
import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
    from omegaconf import OmegaConf
except ImportError:  # the peer is missing: skipped, not failed
    print("OmegaConf / PyYAML not installed (python3-omegaconf, python3-yaml): skipping")
    sys.exit(77)

ENV = {"DIFF_USER": "alice", "DIFF_PORT": "3308", "DIFF_EMPTY": "", "DIFF_BOOL": "false", "DIFF_FLOAT": "1e-3"}

OmegaConf.register_new_resolver("multiply", lambda x, y: x * y, replace=True)
OmegaConf.register_new_resolver("divide_ceil", lambda x, y: int(math.ceil(x / y)), replace=True)
OmegaConf.register_new_resolver("divide_floor", lambda x, y: int(math.floor(x / y)), replace=True)

# ---- hand-written cases ------------------------------------------------------------------------

HAND = [
    # YAML 1.1 typing (spec section 2)
    "a: yes\nb: No\nc: on\nd: OFF\ne: tRue\nf: y\ng: n\nh: nUll\ni: ~\nj:\n",
    "a: 1_000\nb: 0x1F\nc: 017\nd: 0b11\ne: 1:30\nf: 190:20:30\ng: 0o17\nh: +5\ni: -0\nj: 09\n",
    "a: 1.5\nb: .5\nc: 1.\nd: -2.5E+2\ne: 1_0.5\nf: 1e3\ng: 2E-2\nh: 1e+5\ni: .inf\nj: -.Inf\nk: .NaN\nl: 1:30.5\n",
    "a: 2020-01-01\nb: '123'\nc: \"true\"\nd: 'null'\ne: ???\nf: '???'\ng: !!str 12\nh: |\n  block\n  text\n",
    "a: &x {p: 1, q: [1, 2]}\nb: *x\nc:\n  <<: *x\n  q: 3\n",
    # interpolation semantics (spec section 7)
    "a: 1\nb: ${a}\nc: x_${a}\nd: ${a}${a}\ne: ' ${a}'\nf: ${e}\n",
    "f: 1e-05\ng: 1.0e20\nh: 1e15\ni: 1e16\nj: str_${f}_${g}_${h}_${i}\nk: ${i}\n",
    "t: true\nn: null\nl: [1, a]\nd: {x: 1}\ns: ${t}/${n}/${l}/${d}\n",
    "a:\n  b:\n    x: 1\n    y: ${.x}\n    z: ${..w}\n  w: 2\nlst: [1, '${.0}', '${..a.w}']\n",
    "opts: {p: 10, q: 20}\nchoice: q\nref: .opts\npick: ${opts.${choice}}\npick2: ${opts[${choice}]}\nrel: ${${ref}.p}\n",
    "src: {x: 3, y: '${.x}'}\ndst: ${src}\n",
    "x: 1\nesc: \\${x}\nafter: ${esc}\n",
    "x: 1\nbefore: ${esc}\nesc: \\${x}\n",
    "dir: tmp\np1: C:\\foo_${dir}\np2: C:\\\\foo_${dir}\np3: \\\\${dir}\np4: \\\\\\${dir}\np5: $${dir}\np6: ${dir}}\n",
    "m: ???\na: ${m}\nb: pre_${m}\n",
    "a: ${b}\nb: ${a}\n",
    "a: ${nope}\n",
    "a: {b: '${a}'}\n",
    "l: [1]\na: ${l.5}\n",
    "s: 1\na: ${s.x}\n",
    "a: ${foo:1}\n",
    # resolvers
    "h: 768\nffn: ${multiply:4, ${h}}\nfl: ${multiply:2, 1.5}\n",
    "a: ${divide_ceil:7, 2}\nb: ${divide_ceil:-7, 2}\nc: ${divide_floor:-7, 2}\nd: ${divide_floor:7.5, 2}\n",
    "a: ${divide_ceil:1, 0}\n",
    "u: ${oc.env:DIFF_USER}\np: ${oc.env:DIFF_PORT}\ne: ${oc.env:DIFF_EMPTY}\nd: ${oc.env:DIFF_NOPE,123}\n"
    "t: ${oc.env:DIFF_NOPE,true}\nn: ${oc.env:DIFF_NOPE,null}\nx: ${oc.decode:${oc.env:DIFF_PORT}}\n"
    "b: ${oc.decode:${oc.env:DIFF_BOOL}}\nf: ${oc.decode:${oc.env:DIFF_FLOAT}}\n",
    "a: ${oc.env:DIFF_NOPE}\n",
    "d: {b: 1, c: 2}\nsel: ${oc.select:d.b}\nfb: ${oc.select:nope,fallback}\nnn: ${oc.select:nope}\n"
    "keys: ${oc.dict.keys:d}\nvals: ${oc.dict.values:d}\n",
    "g:\n  d: {p: 1, q: 2}\n  vals: ${oc.dict.values:.d}\n  keys: ${oc.dict.keys:.d}\n",
    "x: 5\nc: \"${oc.create:'{a: ${x}, b: [1, 2]}'}\"\n",
    "a: ${oc.decode:'123'}\nb: \"${oc.decode:'  123  '}\"\nc: ${oc.decode:null}\nd: ${oc.decode:'1.5'}\n",
    "a: \"${oc.select:'x:y', none}\"\n",
    # resolver argument grammar
    "x: 5\na: \"${oc.select:nope, '${x}'}\"\nb: \"${oc.select:nope,  a  b  }\"\nc: \"${oc.select:nope, 1_000}\"\n"
    "d: \"${oc.select:nope, 007}\"\ne: \"${oc.select:nope, TrUe}\"\nf: \"${oc.select:nope, a\\\\,b}\"\n",
    # emission corner cases
    "a: 'yes'\nb: 'a: b'\nc: 'a #b'\nd: ' lead'\ne: ''\nf: \"it's\"\ng: \"a\\tb\"\nh: \"l1\\nl2\"\ni: '- x'\nj: '*x'\n"
    "k: '0x1F'\nl: '1e3'\nm: '~'\nn: '<<'\no: '='\n",
    "long: " + " ".join(["word"] * 40) + "\nlong2: '" + "x" * 100 + " y'\n",
    "empty_d: {}\nempty_l: []\nnested: [[1, 2], [3, []], {a: {}}]\n",
    "'': 1\n'y': 2\n? " + "k" * 130 + "\n: 3\n",
]

# ---- random configs ------------------------------------------------------------------------------

KEYS = ["a", "b", "c", "x", "y", "z", "name", "lr", "size", "model", "data", "run", "items", "opt", "k1", "k_2",
        "dir", "on", "off", "n", "flag", "path", "v"]
STRINGS = ["gpt3", "yes", "no", "null", "123", "1e3", "0x1F", "017", "", " lead", "a: b", "a #b", "it's", "path/to/x",
           "with space", "2020-01-01", "ünïcödé", "~", "-", "- a", "*", "@x", "%x", "a,b", "{x}", "[1]", "$5", "a\\b",
           "line1\nline2", "tab\there", " ".join(["w"] * 30), "x" * 85, "true", "False", ".inf", "nan", "1_000", ":"]
FLOATS = [0.5, 1e-5, 1e16, 1e15, 3.14159, -0.0, 1.0, 1e17, 2.5e-7, -123.456, float("inf"), 6e-4, 0.1]
INTS = [0, 1, -5, 2, 3, 8, 1000000, 2 ** 40, -(2 ** 31), 768, 4096]


class Gen:
    def __init__(self, rng):
        self.rng = rng

    def scalar(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(INTS)
        if r < 0.45:
            return self.rng.choice(FLOATS)
        if r < 0.55:
            return self.rng.choice([True, False])
        if r < 0.6:
            return None
        if r < 0.65:
            return "???"
        return self.rng.choice(STRINGS)

    def value(self, depth):
        r = self.rng.random()
        if depth < 3 and r < 0.25:
            return self.dict(depth + 1)
        if depth < 3 and r < 0.35:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 4))]
        return self.scalar()

    def dict(self, depth):
        keys = self.rng.sample(KEYS, self.rng.randint(0 if depth else 2, 6))
        return {k: self.value(depth) for k in keys}

    @staticmethod
    def paths(node, prefix=()):
        out = [(prefix, node)]
        if isinstance(node, dict):
            for k, v in node.items():
                out += Gen.paths(v, prefix + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                out += Gen.paths(v, prefix + (str(i),))
        return out

    def ref(self, target, at):
        """An interpolation text pointing from the node at `at` to `target` (absolute or relative)."""
        if self.rng.random() < 0.35 and len(at) >= 1:
            container = at[:-1]
            common = 0
            while common < len(container) and common < len(target) and container[common] == target[common]:
                common += 1
            up = len(container) - common
            rest = target[common:]
            if rest:
                return "${" + "." * (up + 1) + ".".join(rest) + "}"
        if self.rng.random() < 0.2 and target:
            return "${" + ".".join(target[:-1] + ()) + ("." if len(target) > 1 else "") + "[" + target[-1] + "]}" \
                if len(target) > 1 else "${[" + target[0] + "]}"
        return "${" + ".".join(target) + "}"

    def interpolation(self, root, at):
        all_paths = [p for p, _ in self.paths(root) if p and p != at]
        # bignlp's ints are 64-bit: keep resolver arithmetic inside that range (Python's are unbounded).
        numeric = [p for p, v in self.paths(root) if p and p != at and isinstance(v, (int, float))
                   and not isinstance(v, bool) and abs(v) < 2 ** 40]
        dicts = [p for p, v in self.paths(root) if p and isinstance(v, dict) and not (at[:len(p)] == p)]
        r = self.rng.random()
        if not all_paths:
            return "${oc.env:DIFF_USER}"
        if r < 0.3:
            return self.ref(self.rng.choice(all_paths), at)
        if r < 0.45:
            return "pre_" + self.ref(self.rng.choice(all_paths), at) + "_" + self.ref(self.rng.choice(all_paths), at)
        if r < 0.55 and numeric:
            fn = self.rng.choice(["multiply", "divide_ceil", "divide_floor"])
            return "${%s:%s, %s}" % (fn, self.ref(self.rng.choice(numeric), at), self.rng.choice(["2", "3", "1.5", "8"]))
        if r < 0.62:
            return "${oc.select:%s,%s}" % (self.rng.choice([".".join(p) for p in all_paths] + ["nope.x"]),
                                          self.rng.choice(["fallback", "1", "null", "'q'"]))
        if r < 0.68:
            return self.rng.choice(["${oc.env:DIFF_USER}", "${oc.env:DIFF_NOPE,d_${oc.env:DIFF_PORT}}",
                                    "${oc.decode:${oc.env:DIFF_PORT}}", "${oc.env:DIFF_EMPTY}"])
        if r < 0.74 and dicts:
            return "${oc.dict.%s:%s}" % (self.rng.choice(["keys", "values"]), ".".join(self.rng.choice(dicts)))
        if r < 0.8:
            return "\\" + self.ref(self.rng.choice(all_paths), at)
        if r < 0.85:
            return "${nope_" + str(self.rng.randint(0, 9)) + "}"
        if r < 0.9 and numeric:
            return "${oc.decode:'%s'}" % self.rng.choice(["123", "1.5", "true", "null", "abc"])
        return self.ref(self.rng.choice(all_paths), at)

    def config(self):
        root = self.dict(0)
        leaves = [p for p, v in self.paths(root) if p and not isinstance(v, (dict, list))]
        self.rng.shuffle(leaves)
        for p in leaves[: max(1, int(len(leaves) * self.rng.uniform(0.1, 0.5)))]:
            node = root
            for k in p[:-1]:
                node = node[int(k)] if isinstance(node, list) else node[k]
            text = self.interpolation(root, p)
            if isinstance(node, list):
                node[int(p[-1])] = text
            else:
                node[p[-1]] = text
        return yaml.safe_dump(root, default_flow_style=False, allow_unicode=True, sort_keys=False)


# ---- the two sides -------------------------------------------------------------------------------


def reference(path, package=None, resolve=True):
    """What Hydra prints; returns (ok, text)."""
    try:
        cfg = OmegaConf.load(path)
        if package is None:
            if resolve:
                OmegaConf.resolve(cfg)
            return True, OmegaConf.to_yaml(cfg)
        ret = OmegaConf.select(cfg, package)
        if ret is None:
            return False, "not found"
        if OmegaConf.is_config(ret):
            if resolve:
                OmegaConf.resolve(ret)
            return True, "# @package %s\n%s" % (package, OmegaConf.to_yaml(ret))
        return True, "%s\n" % (ret,)
    except Exception as e:  # OmegaConf errors of every kind
        return False, "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def ours(bignlp, conf_dir, package=None, resolve=True):
    args = [bignlp, "--config-path", conf_dir, "--config-name", "config", "--cfg", "job"]
    if resolve:
        args.append("--resolve")
    if package is not None:
        args += ["-p", package]
    env = dict(os.environ)
    env.update(ENV)
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    return p.returncode == 0, p.stdout if p.returncode == 0 else p.stderr.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bignlp", required=True)
    ap.add_argument("--random", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="directory to keep the failing cases in")
    args = ap.parse_args()
    os.environ.update(ENV)
    rng = random.Random(args.seed)
    gen = Gen(rng)
    cases = [("hand-%02d" % i, t) for i, t in enumerate(HAND)]
    cases += [("random-%03d" % i, gen.config()) for i in range(args.random)]
    failures = 0
    compared = {"ok": 0, "error": 0, "package": 0}
    work = tempfile.mkdtemp(prefix="bignlp-diff-")
    try:
        for name, text in cases:
            conf = os.path.join(work, name)
            os.makedirs(conf)
            path = os.path.join(conf, "config.yaml")
            with open(path, "w") as f:
                f.write(text)
            checks = [(None, True), (None, False)]
            try:
                keys = [".".join(p) for p, _ in Gen.paths(OmegaConf.to_container(OmegaConf.load(path))) if p]
            except Exception:
                keys = []
            if keys:
                checks.append((rng.choice(keys), rng.random() < 0.5))
            for package, resolve in checks:
                ref_ok, ref_text = reference(path, package, resolve)
                our_ok, our_text = ours(args.bignlp, conf, package, resolve)
                same = (ref_ok == our_ok) and (not ref_ok or ref_text == our_text)
                if same:
                    compared["error" if not ref_ok else ("package" if package else "ok")] += 1
                    continue
                failures += 1
                print("=" * 80)
                print("DIFFERENCE in %s (package=%s, resolve=%s)\n--- config.yaml ---\n%s" % (name, package, resolve, text))
                print("--- OmegaConf (%s) ---\n%s" % ("ok" if ref_ok else "error", ref_text))
                print("--- bignlp (%s) ---\n%s" % ("ok" if our_ok else "error", our_text))
                if args.keep:
                    shutil.copytree(conf, os.path.join(args.keep, name), dirs_exist_ok=True)
        total = sum(compared.values())
        print("compared %d outputs of %d configs (%d hand-written, %d random, seed %d): %d identical YAML, %d identical "
              "-p outputs, %d errors on both sides; %d differences"
              % (total + failures, len(cases), len(HAND), args.random, args.seed, compared["ok"], compared["package"],
                 compared["error"], failures))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
