#!/usr/bin/python3
"""A small OpenAI-compatible server for the end-to-end tests, on 127.0.0.1 (ephemeral port).

POST /v1/chat/completions:
  - the request offers tools and has no tool result yet: the answer is one tool call,
    get_weather {"city": "Paris"} (finish_reason "tool_calls");
  - otherwise the answer is TOOL_ANSWER (after a tool result) or STORY;
  - "stream": true answers as server-sent events, text in three chunks, and when
    stream_options.include_usage is set a last chunk with the usage and no choices.
POST /v1/embeddings: one vector of DIM numbers per input.
Every answer reports usage (PROMPT_TOKENS, COMPLETION_TOKENS; embeddings: EMBED_TOKENS).
requests holds every decoded request body, in order, with its path.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "gpt-4o-mini-2024-07-18"
TOOL_ANSWER = "It is rainy in Paris, 57F."
STORY = "Once upon a time, a cloud fell in love with the sea."
PROMPT_TOKENS, COMPLETION_TOKENS = 31, 12
EMBED_TOKENS = 6
DIM = 4


def usage():
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}


class FakeOpenAI:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                with owner.lock:
                    owner.requests.append({"path": self.path, "body": body})
                if self.path.endswith("/chat/completions"):
                    owner.chat(self, body)
                elif self.path.endswith("/embeddings"):
                    inputs = body.get("input") or []
                    if isinstance(inputs, str):
                        inputs = [inputs]
                    data = [{"object": "embedding", "index": i,
                             "embedding": [0.1 * (i + 1)] * DIM} for i in range(len(inputs))]
                    owner.send_json(self, {"object": "list", "data": data,
                                           "model": "text-embedding-3-small",
                                           "usage": {"prompt_tokens": EMBED_TOKENS,
                                                     "total_tokens": EMBED_TOKENS}})
                else:
                    owner.send_json(self, {"error": {"message": "no route"}}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def send_json(h, obj, status=200):
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def chat(self, h, body):
        msgs = body.get("messages") or []
        has_result = any(m.get("role") == "tool" for m in msgs)
        if body.get("tools") and not has_result:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": TOOL_ANSWER if has_result else STORY}
            finish = "stop"
        base = {"id": "chatcmpl-e2e", "created": 1700000000, "model": MODEL}
        if not body.get("stream"):
            self.send_json(h, dict(base, object="chat.completion", usage=usage(), choices=[
                {"index": 0, "message": message, "finish_reason": finish}]))
            return
        chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}}]
        text = message.get("content") or ""
        third = max(1, len(text) // 3)
        for i in range(0, len(text), third):
            chunks.append({"index": 0, "delta": {"content": text[i:i + third]}})
        if message.get("tool_calls"):
            tc = dict(message["tool_calls"][0], index=0)
            chunks.append({"index": 0, "delta": {"tool_calls": [tc]}})
        chunks.append({"index": 0, "delta": {}, "finish_reason": finish})
        events = [dict(base, object="chat.completion.chunk", choices=[c]) for c in chunks]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(dict(base, object="chat.completion.chunk", choices=[], usage=usage()))
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        data += b"data: [DONE]\n\n"
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
