"""An OTLP client for the end-to-end tests: protobuf classes and senders, none of otel2dd's code.

On import, protoc generates Python classes from the proto/ folder of this checkout into a
temporary directory (once per test process) and this module exposes them:
trace_pb2, logs_pb2, trace_service_pb2, logs_service_pb2, metrics_service_pb2, status_pb2 and
details_pb2 (google.rpc.error_details); set_attr and new_id help build requests.

    from otlp_client import trace_service_pb2, send_grpc, send_http

    status = send_http(o.http_port, body)        # the HTTP status (an HTTP error is no raise)
    code = send_grpc(o.grpc_port, body)          # the grpc.StatusCode (an RpcError is no raise)
"""
import os
import random
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
PB = "application/x-protobuf"

__all__ = ["TRACE_EXPORT", "LOGS_EXPORT", "METRICS_EXPORT", "PB", "trace_pb2", "logs_pb2",
           "trace_service_pb2", "logs_service_pb2", "metrics_service_pb2", "status_pb2",
           "details_pb2", "set_attr", "new_id", "grpc_call", "send_grpc", "http_post",
           "send_http"]

PROTOS = ["opentelemetry/proto/common/v1/common.proto",
          "opentelemetry/proto/resource/v1/resource.proto",
          "opentelemetry/proto/trace/v1/trace.proto",
          "opentelemetry/proto/logs/v1/logs.proto",
          "opentelemetry/proto/metrics/v1/metrics.proto",
          "opentelemetry/proto/collector/trace/v1/trace_service.proto",
          "opentelemetry/proto/collector/logs/v1/logs_service.proto",
          "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
          "google/rpc/status.proto",
          "google/rpc/error_details.proto"]


def _load_protos():
    """protoc --python_out for the messages the tests build and decode."""
    out = tempfile.mkdtemp(prefix="otel2dd-otlp-pb2-")
    subprocess.run(["protoc", "--python_out=" + out, "-I", os.path.join(ROOT, "proto")] + PROTOS,
                   check=True)
    sys.path.insert(0, out)


_load_protos()

from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402
from opentelemetry.proto.logs.v1 import logs_pb2  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2  # noqa: E402
from google.rpc import status_pb2  # noqa: E402
from google.rpc import error_details_pb2 as details_pb2  # noqa: E402


def set_attr(kvs, key, value):
    """Adds key = value to a repeated KeyValue field: a bool, an int, a dict (a kvlist, nested
    the same way) or else a string."""
    kv = kvs.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, dict):
        for k, v in value.items():
            set_attr(kv.value.kvlist_value.values, k, v)
    else:
        kv.value.string_value = value


_next_id = random.randrange(1 << 40, 1 << 50)


def new_id():
    """A fresh span id (an int): one more than the last, from a random start in [2^40, 2^50)."""
    global _next_id
    _next_id += 1
    return _next_id


def grpc_call(port, method, body, timeout=10):
    """The gRPC status code of one unary call of method with body (serialized bytes)."""
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        call = ch.unary_unary(method, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        try:
            call(body, timeout=timeout)
        except grpc.RpcError as e:
            return e.code()
    return grpc.StatusCode.OK


def send_grpc(port, body, timeout=10):
    """The gRPC status code of one trace Export call."""
    return grpc_call(port, TRACE_EXPORT, body, timeout)


def http_post(port, path, body, ctype=PB, headers=None, timeout=10):
    """The HTTP status of one POST to 127.0.0.1:port; a connection error raises."""
    h = {"Content-Type": ctype}
    h.update(headers or {})
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def send_http(port, body, timeout=10):
    """The HTTP status of one OTLP/HTTP protobuf trace export."""
    return http_post(port, "/v1/traces", body, timeout=timeout)
