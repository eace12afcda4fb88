"""Golden data for the `tools` column of conversational data (issue 25) from TRL 1.13 + transformers 5.18, written
beside scripts/chat_golden.py's under src/data/src/test/resources/golden/chat/ (run that first: it makes the
template folders models/NAME/):

  data/tools.jsonl  conversational examples with a `tools` column (JSON schemas, as a JSON string) and tool calls /
                    tool results
  tools.json        per template that renders tools (qwen2_5, qwen3, llama3_1, llama3_2 and the training
                    variants): transformers' apply_chat_template(messages, tools=...) text, with and without
                    add_generation_prompt; and TRL SFTTrainer's prepared rows of data/tools.jsonl (input_ids,
                    labels), without and with assistant_only_loss

Run with the oracle environment: PY=$(scripts/oracle-venv.sh | tail -1); $PY scripts/chat_tools_golden.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_golden import ROOT, sft_rows  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather — in °C.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. \"Paris\""},
        "days": {"type": "integer", "description": "How many days"}}, "required": ["city"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two numbers.",
    "parameters": {"type": "object", "properties": {
        "a": {"type": "number", "description": "first"}, "b": {"type": "number", "description": "second"}},
        "required": ["a", "b"]}}}
TOOLS = [WEATHER, ADD]

# as users write them: a tool-calling assistant turn without content, no null keys (datasets adds them when it
# unifies the rows' schema, which TRL's preprocessing goes through; qwen's templates do not tell the two apart,
# llama3_1's `'tool_calls' in message` does, so its rows are not in the SFT cases)
CONVERSATIONS = [
    [{"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "tool_calls": [
         {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
     {"role": "tool", "content": "{\"temp\": 21}"},
     {"role": "assistant", "content": "It is 21 °C."}],
    [{"role": "system", "content": "Use tools."},
     {"role": "user", "content": "And in Oslo, tomorrow?"},
     {"role": "assistant", "tool_calls": [
         {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 1}}}]},
     {"role": "tool", "content": "{\"temp\": -3.5}"},
     {"role": "assistant", "content": "Cold: −3.5 °C."}],
]
RENDERED = ["qwen2_5", "qwen3", "llama3_1", "llama3_2", "qwen2_5_training", "qwen3_training"]
SFT = [("qwen2_5", False), ("qwen2_5", True), ("qwen3", False), ("qwen3", True)]
DATE = {"date_string": "26 Jul 2024"}


def main():
    # tools as a JSON string, as TRL reads it (json.loads): a list of schemas would go through datasets' schema
    # unification, which gives each tool the other tools' parameter names as nulls; so would tool-call arguments
    # of different keys (hence one tool called in both conversations)
    rows = [{"messages": c, "tools": json.dumps(TOOLS, ensure_ascii=False)} for c in CONVERSATIONS]
    (ROOT / "data" / "tools.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    render = {}
    for name in RENDERED:
        tok = AutoTokenizer.from_pretrained(ROOT / "models" / name)
        cases = []
        for ci, conv in enumerate(CONVERSATIONS):
            for gen in (False, True):
                case = {"conversation": ci, "add_generation_prompt": gen}
                try:
                    case["text"] = tok.apply_chat_template(conv, tools=TOOLS, tokenize=False,
                                                           add_generation_prompt=gen, **DATE)
                except Exception as e:  # the template's raise_exception
                    case["error"] = str(e)
                cases.append(case)
        render[name] = cases
    sft = []
    for name, assistant_only in SFT:
        sft.append({"template": name, "assistant_only_loss": assistant_only,
                    "rows": sft_rows(ROOT / "models" / name, rows, None, False, assistant_only)})
        print(f"tools.jsonl {name} assistant_only={assistant_only}: {len(sft[-1]['rows'])} rows", file=sys.stderr)
    (ROOT / "tools.json").write_text(json.dumps({"tools": TOOLS, "conversations": CONVERSATIONS, "render": render,
                                                 "sft": sft}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
