"""Shell and Python script templates: parameters substituted, artifacts at their paths,
outputs read back from files (they run on the host; ``image=`` is recorded).

Run: hpcflow run examples/script_templates.py
"""

from pathlib import Path

from hpcflow import (
    InputArtifact,
    InputParameter,
    OutputArtifact,
    OutputParameter,
    PythonScriptOPTemplate,
    ShellOPTemplate,
    Step,
    Workflow,
    download_artifact,
    upload_artifact,
)

shout = ShellOPTemplate(
    name="shout", image="alpine:3.20",
    script="tr a-z A-Z < /tmp/in.txt > /tmp/out.txt\n"
           "echo {{inputs.parameters.greeting}} >> /tmp/out.txt\n"
           "wc -l < /tmp/out.txt | tr -d ' ' > /tmp/lines.txt\n",
)
shout.inputs.parameters = {"greeting": InputParameter()}
shout.inputs.artifacts = {"text": InputArtifact(path="/tmp/in.txt")}
shout.outputs.parameters = {"lines": OutputParameter(value_from_path="/tmp/lines.txt", type=int)}
shout.outputs.artifacts = {"out": OutputArtifact(path="/tmp/out.txt")}

square = PythonScriptOPTemplate(
    name="square", image="python:3.11",
    script="import json\n"
           "n = {{inputs.parameters.n}}\n"
           "with open('/tmp/result.json', 'w') as f:\n"
           "    json.dump({'square': n * n}, f)\n",
)
square.inputs.parameters = {"n": InputParameter()}
square.outputs.parameters = {"result": OutputParameter(value_from_path="/tmp/result.json",
                                                       type=dict)}

if __name__ == "__main__":
    Path("in.txt").write_text("hello from a file\n")
    first = Step("shout", shout, parameters={"greeting": "it's $HOME; rm -rf /"},
                 artifacts={"text": upload_artifact("in.txt")})
    second = Step("square", square, parameters={"n": first.outputs.parameters["lines"]})
    wf = Workflow(name="scripts")
    wf.add(first)
    wf.add(second)
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("lines:", wf.query_step(name="shout")[0].outputs.parameters["lines"].value)
    print("result:", wf.query_step(name="square")[0].outputs.parameters["result"].value)
    out = download_artifact(wf.query_step(name="shout")[0].outputs.artifacts["out"],
                            path="downloaded")
    print("out:", Path(out[0]).read_text().strip().replace("\n", " | "))
