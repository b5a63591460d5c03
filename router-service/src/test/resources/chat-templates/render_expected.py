"""Renders the chat-template fixtures of ChatTemplateTest as Hugging Face transformers does
(apply_chat_template's environment: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, tojson with ensure_ascii=False, raise_exception) and writes expected.json.
Run from anywhere: python3 render_expected.py DIR (this directory); needs Jinja2 3.x."""
import json, sys, pathlib
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.exceptions import TemplateError

def raise_exception(message):
    raise TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

here = pathlib.Path(sys.argv[1])
cases = json.loads((here / "cases.json").read_text())
out = []
for c in cases:
    t = env.from_string((here / c["template"]).read_text())
    ctx = dict(c["context"])
    try:
        r = {"output": t.render(**ctx)}
    except TemplateError as e:
        r = {"error": str(e)}
    out.append(dict(c, expected=r))
(here / "expected.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
print(json.dumps([o["expected"] for o in out], ensure_ascii=False, indent=1))
