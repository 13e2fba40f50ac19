#!/usr/bin/python3
"""Writes the APM golden fixtures of this folder (NNN-name.json: rule, input, config, expect).

    make_fixtures.py                  write every fixture's rule/input/config, keep its expect
    make_fixtures.py --fill DUMPCMD   also (re)compute expect by running DUMPCMD, which must
                                      print the translated payload list for a fixture file
                                      (APM_GOLDEN_DUMP of tests/unit/test_apm_golden)

A filled expectation is only a draft: each one was read against its rule before it was
committed. The inputs are OTLP/JSON as the OpenTelemetry SDKs send it.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1700000000000000000
TRACE = "72df520af2bde7a5240031ead750e5f3"  # otlp_test.go vector -> 2594128270069917171
TRACE2 = "00000000000000000000000000000abc"
T1 = "0102030405060708090a0b0c0d0e0f1"  # + one hex digit: the trace ids of Datadog's otlp_test.go
SRC_T = "DataDog/datadog-agent pkg/trace/transform/transform.go@021dec7 OtelSpanToDDSpan"
SRC_O = "DataDog/datadog-agent pkg/trace/transform/otelutil.go@90b1f4c"
SRC_N = "DataDog/datadog-agent pkg/trace/traceutil/normalize/normalize.go"
SRC_R = "DataDog/datadog-agent pkg/trace/api/otlp.go receiveResourceSpansV2/createChunks"
SRC_S = "DataDog/datadog-agent pkg/opentelemetry-mapping-go/otlp/attributes/source.go"
SRC_A = "DataDog/datadog-agent pkg/trace/agent (normalizer.go, obfuscate.go, truncator.go)"
# Datadog's own tests that give the inputs and expected values of the fixtures naming them
T_OTLP = "DataDog/datadog-agent pkg/trace/api/otlp_test.go"
T_OTLPC = "DataDog/datadog-agent pkg/trace/api/otlp_otel_compliant_test.go"
T_TRANS = "DataDog/datadog-agent pkg/trace/transform/transform_test.go"
T_UTIL = "DataDog/datadog-agent pkg/trace/otel/traceutil/otel_util_test.go"
T_STATS = "DataDog/datadog-agent pkg/trace/stats/otel_util_test.go"
T_NORM = "DataDog/datadog-agent pkg/trace/agent/normalizer_test.go"
T_TRUNC = "DataDog/datadog-agent pkg/trace/agent/truncator_test.go"
SN = "DataDog/datadog-agent pkg/trace/traceutil/normalize/normalize_test.go"
T_SRC = "DataDog/opentelemetry-mapping-go pkg/otlp/attributes/source_test.go"

SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER = 2, 3, 1, 4, 5


def av(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [av(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": attrs(v)}}
    return {"stringValue": v}


def attrs(d):
    return [{"key": k, "value": av(v)} for k, v in d.items()]


def span(name, kind=INTERNAL, a=None, sid="0000000000000001", parent="", trace=TRACE,
         start=0, dur=1500000, status=None, events=None, links=None, tracestate=""):
    s = {"traceId": trace, "spanId": sid, "name": name, "kind": kind,
         "startTimeUnixNano": str(T0 + start), "endTimeUnixNano": str(T0 + start + dur),
         "attributes": attrs(a or {})}
    if parent:
        s["parentSpanId"] = parent
    if status:
        s["status"] = status
    if events:
        s["events"] = events
    if links:
        s["links"] = links
    if tracestate:
        s["traceState"] = tracestate
    return s


def req(spans, res=None, scope=("opentelemetry.instrumentation.test", "0.1"), more_rs=None):
    rs = [{"resource": {"attributes": attrs(res if res is not None else {"service.name": "shop"})},
           "scopeSpans": [{"scope": {"name": scope[0], "version": scope[1]}, "spans": spans}]}]
    return {"resourceSpans": rs + (more_rs or [])}


def rs(spans, res, scope=("opentelemetry.instrumentation.test", "0.1")):
    return {"resource": {"attributes": attrs(res)},
            "scopeSpans": [{"scope": {"name": scope[0], "version": scope[1]}, "spans": spans}]}


FX = []


def fx(name, rule, inp, config=None, hostname=False, datadog=None, num=None, stats_hits=None):
    """datadog: for each span of the fixture, in payload, chunk and span order, what Datadog's
    own test expects: a string is the resource (and sql.query, where the span has one), a dict
    gives span fields ("meta:KEY" / "metrics:KEY" for one entry, "payload:KEY" / "chunk:KEY" for
    a field of the span's payload or chunk; None: the key must be absent). It replaces whatever
    the fill computed. num: the fixture's number, for those written after the hand-made 088-090.
    stats_hits: the sum of Hits over the APM stats `otel2dd translate` prints (checked by
    tests/e2e/test_apm_golden.py only)."""
    FX.append((name, rule, inp, config, hostname, datadog, num, stats_hits))


# The names of TestOTLPSpanNameV2_OTelCompliantTranslation come from the OTel-compliant mode; for the
# rules below (all but the kind fallback, which that mode lowercases) the default mode's
# getOTelOperationNameV2 gives the same names.
NAMES_C = T_OTLPC + " TestOTLPSpanNameV2_OTelCompliantTranslation (scope libname)"


def v2op(n):
    return f"V2 operation name rule {n}: {SRC_O} getOTelOperationNameV2"


# ---- HTTP ----
fx("http-server-new-semconv", v2op(2) + "; resource METHOD + http.route for SERVER (getOTelResourceV2); "
   "HTTPMappings key remap (attributes.go)",
   req([span("GET /items/{id}", SERVER, {"http.request.method": "GET", "http.route": "/items/{id}",
              "http.response.status_code": 200, "url.path": "/items/3", "url.scheme": "http",
              "server.address": "api.local", "client.address": "10.0.0.1",
              "user_agent.original": "curl/8.0", "network.protocol.version": "1.1"})]))
fx("http-server-old-semconv", "old HTTP semconv on SERVER spans: http.method GET gives "
   "http.server.request (" + T_UTIL + " TestGetOTelOperationNameV2_HTTPRequestMethodFallback, "
   "'http.method (semconv 1.6.1) server'), http.method DELETE the resource DELETE "
   "(TestFallbackInconsistency_HTTPMethodPrecedence, 'http.method used when http.request.method not "
   "present'); the metric http.status_code from http.status_code 200, which wins over "
   "http.response.status_code 201 (" + T_TRANS + " TestGetOTelStatusCode, 'http.status_code only in "
   "span' and 'http.status_code takes precedence over http.response.status_code in span')",
   req([span("test-span", SERVER, {"http.method": "GET"}),
        span("span_name", SERVER, {"http.method": "DELETE"}, sid="0000000000000002"),
        span("span_name", SERVER, {"http.status_code": 200}, sid="0000000000000003"),
        span("span_name", SERVER, {"http.status_code": 200, "http.response.status_code": 201},
             sid="0000000000000004")]),
   datadog=[{"name": "http.server.request"}, {"resource": "DELETE"},
            {"metrics:http.status_code": 200}, {"metrics:http.status_code": 200}])
fx("http-client-new-url-template", v2op(3) + "; CLIENT resource METHOD + url.template (newest getOTelResourceV2)",
   req([span("GET", CLIENT, {"http.request.method": "GET", "url.full": "https://api.x/v1/u/3",
              "url.template": "/v1/u/{id}", "http.response.status_code": 200,
              "server.address": "api.x", "server.port": 443})]))
fx("http-client-old-semconv", "old HTTP semconv on CLIENT spans: http.method POST gives "
   "http.client.request (" + T_UTIL + " TestGetOTelOperationNameV2_HTTPRequestMethodFallback, "
   "'http.method (semconv 1.6.1) client'), http.method DELETE the resource DELETE "
   "(TestGetOTelResourceV2_HTTPRequestMethodResource, 'http.method (semconv 1.6.1) only')",
   req([span("test-span", CLIENT, {"http.method": "POST"}),
        span("span_name", CLIENT, {"http.method": "DELETE"}, sid="0000000000000002")]),
   datadog=[{"name": "http.client.request"}, {"resource": "DELETE"}])
fx("http-method-other", "http.request.method _OTHER: resource HTTP (" + T_UTIL + " TestGetOTelResourceV2_"
   "HTTPRequestMethodResource, '_OTHER normalized to HTTP', CLIENT) and name http.server.request "
   "(TestGetOTelOperationNameV2_HTTPRequestMethodFallback, same case, SERVER)",
   req([span("span_name", CLIENT, {"http.request.method": "_OTHER"}),
        span("test-span", SERVER, {"http.request.method": "_OTHER"}, sid="0000000000000002")]),
   datadog=[{"resource": "HTTP"}, {"name": "http.server.request"}])
fx("http-client-route-ignored", "http.route is appended to the method only for SERVER spans (" + T_UTIL +
   " TestGetOTelResourceV2_HTTPRequestMethodResource, 'with route for server' / 'with route for client "
   "- no route appended'; TestGetOTelResource, 'HTTP method and route resource': V2 GET for a span "
   "of unspecified kind)",
   req([span("span_name", SERVER, {"http.request.method": "POST", "http.route": "/api/users"}),
        span("span_name", CLIENT, {"http.request.method": "POST", "http.route": "/api/users"},
             sid="0000000000000002"),
        span("span_name", 0, {"http.method": "GET", "http.route": "/"}, sid="0000000000000003")]),
   datadog=[{"resource": "POST /api/users"}, {"resource": "POST"}, {"resource": "GET"}])
# TestOtelSpanToDDSpan_HTTPAttributeMappings: each case is a SERVER span test-span, a resource
# with service.name test-svc plus the case's resource attributes, and scope test-lib.
HTTP_MAP = [
    ({"http.request.method": "GET"}, {}, {"meta:http.method": "GET"}),
    ({"http.method": "POST", "http.request.method": "GET"}, {}, {"meta:http.method": "POST"}),
    ({}, {"server.address": "api.example.com"}, {"meta:http.server_name": "api.example.com"}),
    ({}, {"client.address": "192.168.1.1"}, {"meta:http.client_ip": "192.168.1.1"}),
    ({}, {"url.full": "https://api.example.com/users"}, {"meta:http.url": "https://api.example.com/users"}),
    ({}, {"user_agent.original": "Mozilla/5.0"}, {"meta:http.useragent": "Mozilla/5.0"}),
    ({}, {"network.protocol.version": "1.1"}, {"meta:http.version": "1.1"}),
]
fx("http-header-remap", "HTTP attribute keys are renamed by GetDDKeyForOTLPAttribute, in span and "
   "resource attributes (" + T_TRANS + " TestOtelSpanToDDSpan_HTTPAttributeMappings, one "
   "ResourceSpans per case; 'both old and new HTTP method - old takes precedence for http.method')",
   {"resourceSpans": [rs([span("test-span", SERVER, sa, trace="0102030405060708090a0b0c0d0e0f10",
                               sid="0102030405060708")], dict({"service.name": "test-svc"}, **ra),
                         scope=("test-lib", "")) for sa, ra, _ in HTTP_MAP]},
   datadog=[want for _, _, want in HTTP_MAP])
fx("http-status-string", "a string http.response.status_code is copied to meta http.status_code "
   "(" + T_TRANS + " TestOtelSpanToDDSpan_HTTPAttributeMappings, 'http.response.status_code "
   "(semconv 1.23+) mapped to http.status_code': span test-span SERVER, resource service.name "
   "test-svc, scope test-lib); the metric http.status_code 200 comes from the semantic registry "
   "(LookupInt64 parses strings), which that test does not assert",
   req([span("test-span", SERVER, {"http.response.status_code": "200"})],
       res={"service.name": "test-svc"}, scope=("test-lib", "")),
   datadog=[{"meta:http.status_code": "200"}])
STATUS_VALID = [("100", True), ("599", True), ("99", False), ("600", False),
                ("Invalid status code", False)]  # T_NORM TestIsValidStatusCode
fx("http-status-invalid-meta", "the agent normalizer keeps meta http.status_code only when it is a "
   "status code in 100-599 (" + T_NORM + " TestIsValidStatusCode: 100 and 599 valid; 99, 600 and "
   "'Invalid status code' not)",
   req([span("span_name", SERVER, {"http.status_code": code}, sid=f"{i + 1:016x}")
        for i, (code, _) in enumerate(STATUS_VALID)]),
   datadog=[{"meta:http.status_code": code if ok else None} for code, ok in STATUS_VALID])
fx("http-status-from-resource", "3.11: http.status_code in span beats http.response.status_code in resource "
   "(transform_test.go TestGetOTelStatusCode)",
   req([span("GET /s", SERVER, {"http.request.method": "GET", "http.status_code": 302})],
       res={"service.name": "shop", "http.response.status_code": 500}))

# ---- FastAPI / ASGI ----
fastapi_res = {"service.name": "fastapi-app", "service.version": "1.4.2",
               "deployment.environment": "prod", "telemetry.sdk.language": "python",
               "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.27.0"}
fx("fastapi-server-with-asgi-children",
   "FastAPI server span and its ASGI `http receive`/`http send` INTERNAL children: " + v2op(2) +
   " for the server, rule 14 (Internal) for the children; top-level only for the root "
   "(traceutil.ComputeTopLevel)",
   req([span("GET /items/{item_id} http receive", INTERNAL, {"asgi.event.type": "http.request"},
             sid="00000000000000a2", parent="00000000000000a1", start=100000, dur=20000),
        span("GET /items/{item_id} http send", INTERNAL, {"asgi.event.type": "http.response.start",
                                                          "http.status_code": 200},
             sid="00000000000000a3", parent="00000000000000a1", start=900000, dur=30000),
        span("GET /items/{item_id} http send", INTERNAL, {"asgi.event.type": "http.response.body"},
             sid="00000000000000a4", parent="00000000000000a1", start=950000, dur=10000),
        span("GET /items/{item_id}", SERVER, {"http.scheme": "http", "http.host": "127.0.0.1:8000",
                                              "net.host.port": 8000, "http.flavor": "1.1",
                                              "http.target": "/items/5", "http.url": "http://127.0.0.1:8000/items/5",
                                              "http.method": "GET", "http.server_name": "localhost",
                                              "http.user_agent": "python-httpx/0.27.0",
                                              "net.peer.ip": "127.0.0.1", "net.peer.port": 50412,
                                              "http.route": "/items/{item_id}", "http.status_code": 200},
             sid="00000000000000a1", dur=1000000)],
       res=fastapi_res, scope=("opentelemetry.instrumentation.fastapi", "0.48b0")))
fx("fastapi-error-exception-event",
   "3.8: status Error -> error=1, error.msg from the status message (transform.go@021dec7 Status2Error); "
   "error.type/error.stack from the exception event (transform.go@67b17e8); "
   "_dd.span_events.has_exception (TagSpanIfContainsExceptionEvent); events JSON (MarshalEvents)",
   req([span("GET /boom", SERVER, {"http.method": "GET", "http.route": "/boom", "http.status_code": 500},
             status={"code": 2, "message": "ValueError: boom"},
             events=[{"timeUnixNano": str(T0 + 500), "name": "exception",
                      "attributes": attrs({"exception.type": "ValueError", "exception.message": "boom",
                                           "exception.stacktrace": "Traceback (most recent call last):\n  File \"app.py\", line 3\nValueError: boom",
                                           "exception.escaped": "False"})}])],
       res=fastapi_res, scope=("opentelemetry.instrumentation.fastapi", "0.48b0")))
fx("error-status-no-message-http-text",
   "Status2Error: status Error without message and without exception event -> error.msg "
   "\"<code> <http.StatusText>\" from the string http.status_code in meta (" + T_TRANS +
   " TestFallbackInconsistency_Status2ErrorHTTPCodePrecedence, 'http.status_code used when "
   "http.response.status_code not present': 404 -> '404 Not Found')",
   req([span("span_name", SERVER, {"http.status_code": "404"}, status={"code": 2})]),
   datadog=[{"error": 1, "meta:error.msg": "404 Not Found"}])
fx("error-status-no-message-numeric-code",
   "Status2Error reads the string meta map only: a numeric status code is a metric, so no error.msg",
   req([span("GET /x", SERVER, {"http.method": "GET", "http.response.status_code": 500}, status={"code": 2})]))
EXC = {"exception.message": "Out of memory", "exception.stacktrace": "1/2/3", "exception.type": "mem"}
EXC_CASES = [  # DataDog/datadog-agent pkg/trace/api/otlp_test.go TestOTLPHelpers/status2Error
    ([{"name": "exception", "attributes": attrs(EXC)}],
     {"meta:error.msg": "Out of memory", "meta:error.type": "mem", "meta:error.stack": "1/2/3"}),
    ([{"name": "exception", "attributes": attrs({"exception.message": "Out of memory"})}],
     {"meta:error.msg": "Out of memory", "meta:error.type": None, "meta:error.stack": None}),
    ([{"name": "EXCEPTION", "attributes": attrs({"exception.message": "Out of memory"})}],
     {"meta:error.msg": "Out of memory", "meta:error.type": None, "meta:error.stack": None}),
    ([{"name": "OTher", "attributes": attrs({"exception.message": "Out of memory"})}],
     {"meta:error.msg": None, "meta:error.type": None, "meta:error.stack": None}),
    (None, {"meta:error.msg": None, "meta:error.type": None, "meta:error.stack": None}),
]
fx("error-exception-no-status-message",
   "status Error without message: error.msg, error.type and error.stack from an event named "
   "exception (any case), nothing from another event or without events; error 1 in every case "
   "(" + T_OTLP + " TestOTLPHelpers/status2Error)",
   req([span("work", INTERNAL, {}, sid=f"{i + 1:016x}", status={"code": 2}, events=ev)
        for i, (ev, _) in enumerate(EXC_CASES)]),
   datadog=[dict(want, error=1) for _, want in EXC_CASES])
fx("status-ok-and-description", "status Ok without events -> error 0; status Error with message "
   "'Error number #24' -> error 1, error.msg = the message (" + T_OTLP + " TestOTLPHelpers/"
   "status2Error); otel.status_code is the code's name and otel.status_description the message, "
   "only when non-empty (" + T_OTLP + " testOTLPConvertSpan: 'Error'/'Error', and 'Unset' with "
   "no description)",
   req([span("ok-op", INTERNAL, {}, status={"code": 1}),
        span("err-op", INTERNAL, {}, sid="0000000000000002", status={"code": 2, "message": "Error number #24"}),
        span("unset-op", INTERNAL, {}, sid="0000000000000003")]),
   datadog=[{"error": 0}, {"error": 1, "meta:error.msg": "Error number #24",
                           "meta:otel.status_code": "Error",
                           "meta:otel.status_description": "Error number #24"},
            {"error": 0, "meta:otel.status_code": "Unset"}])
fx("exception-event-without-error-status",
   "status Ok with an exception event (message 'Out of memory', type mem, stacktrace 1/2/3) -> "
   "error 0 and no error.msg/error.type/error.stack (" + T_OTLP + " TestOTLPHelpers/status2Error); "
   "the span still gets _dd.span_events.has_exception (" + T_OTLPC + " TestOTelSpanToDDSpan_"
   "OTelCompliantTranslation sets it on a span with an exception event)",
   req([span("retry", INTERNAL, {}, status={"code": 1}, events=[{"name": "exception", "attributes": attrs({
       "exception.message": "Out of memory", "exception.stacktrace": "1/2/3", "exception.type": "mem"})}])]),
   datadog=[{"error": 0, "meta:_dd.span_events.has_exception": "true", "meta:error.msg": None,
             "meta:error.type": None, "meta:error.stack": None}])
fx("error-attribute-wins", "error.msg already set by a span attribute is kept (Status2Error only fills "
   "missing tags)", req([span("op", INTERNAL, {"error.msg": "from attribute"},
                               status={"code": 2, "message": "from status"})]))

# ---- DB ----
fx("db-postgresql-sqlalchemy", v2op(4) + "; resource = db.statement (rule 6), type sql (DBTypes), "
   "SQL obfuscation of resource, sql.query and db.statement (agent obfuscate.go ObfuscateSQLSpan)",
   req([span("SELECT shop", CLIENT, {"db.system": "postgresql", "db.name": "shop", "db.user": "app",
              "db.statement": "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.id = %(pk_1)s",
              "net.peer.name": "db", "net.peer.port": 5432})],
       scope=("opentelemetry.instrumentation.sqlalchemy", "0.48b0")))
fx("db-sqlalchemy-anon-alias", "SQL obfuscation (pkg/obfuscate/sql.go): AS anon_1 dropped, %(name)s "
   "parameters and numbers become ?", req([span("SELECT shop", CLIENT, {
       "db.system": "postgresql",
       "db.statement": "SELECT count(*) AS count_1 FROM (SELECT orders.id AS orders_id FROM orders WHERE orders.total > %(total_1)s LIMIT %(param_1)s) AS anon_1"})]))
fx("db-new-semconv-query-text", "db.query.text gives the resource, db.statement wins over it (" + T_UTIL +
   " TestGetOTelResourceV2_DBQueryTextFallback, 'db.query.text (semconv 1.26+)' and 'db.statement "
   "takes precedence over db.query.text'); db.namespace gives meta db.name unless db.name is set, "
   "the resource's before the span's (" + T_TRANS + " TestOtelSpanToDDSpanDBNameMapping, first four "
   "cases)",
   {"resourceSpans": [
       rs([span("span_name", CLIENT, {"db.system": "postgresql", "db.query.text": "SELECT * FROM orders"}),
           span("span_name", CLIENT, {"db.system": "mysql", "db.statement": "SELECT FROM users",
                                      "db.query.text": "SELECT FROM orders"}, sid="0000000000000002")],
          {"service.name": "shop"}),
       rs([span("test-span", 0, {"db.namespace": "testdb"}),
           span("test-span", 0, {"db.name": "existing-db", "db.namespace": "testdb"}, sid="0000000000000002")],
          {}, scope=("test-lib", "")),
       rs([span("test-span", 0, {})], {"db.namespace": "testdb"}, scope=("test-lib", "")),
       rs([span("test-span", 0, {"db.namespace": "span-db"})], {"db.namespace": "resource-db"},
          scope=("test-lib", ""))]},
   datadog=["SELECT * FROM orders", "SELECT FROM users", {"meta:db.name": "testdb"},
            {"meta:db.name": "existing-db"}, {"meta:db.name": "testdb"}, {"meta:db.name": "resource-db"}])
# Each SQL fixture (and db-redis-pipeline) takes its statements and expected resources from
# Datadog's own tests (named in the rule); write_all puts those expected strings into resource
# and sql.query.
SQ = "DataDog/datadog-agent pkg/obfuscate/sql_test.go TestSQLQuantizer"


def sql_spans(system, cases):
    return req([span("q", CLIENT, {"db.system": system, "db.statement": q},
                     sid=f"{i + 1:016x}") for i, (q, _) in enumerate(cases)])


def sql_fx(name, rule, system, cases):
    fx(name, rule, sql_spans(system, cases), datadog=[want for _, want in cases])


sql_fx("sql-in-list", "SQL obfuscation: IN lists collapse to ( ? ) (" + SQ + ")", "postgresql", [
    ("SELECT articles.* FROM articles WHERE articles.id IN (1, 3, 5)",
     "SELECT articles.* FROM articles WHERE articles.id IN ( ? )"),
    ("SELECT DISTINCT host.id AS host_id FROM host JOIN host_alias ON host_alias.host_id = host.id "
     "WHERE host.org_id = %(org_id_1)s AND host.name NOT IN (%(name_1)s) AND host.name IN "
     "(%(name_2)s, %(name_3)s, %(name_4)s, %(name_5)s)",
     "SELECT DISTINCT host.id FROM host JOIN host_alias ON host_alias.host_id = host.id WHERE "
     "host.org_id = ? AND host.name NOT IN ( ? ) AND host.name IN ( ? )")])
sql_fx("sql-comments", "SQL obfuscation: --, # and /* */ comments dropped (" + SQ + ")", "mysql", [
    ("-- get user \n--\n select * \n   from users \n    where\n       id = 214325346",
     "select * from users where id = ?"),
    ("SELECT * FROM /* this is an in-line comment */ users;", "SELECT * FROM users"),
    ("select * from users where id = 214325346     # This comment continues to the end of line",
     "select * from users where id = ?")])
sql_fx("sql-dollar-quoted", "SQL obfuscation: a dollar-quoted string becomes ? "
       "(DataDog/datadog-agent pkg/obfuscate/sql_test.go TestDollarQuotedFunc/off), $n "
       "parameters too (" + SQ + ")", "postgresql", [
    ("SELECT $func$INSERT INTO table VALUES ('a', 1, 2)$func$ FROM users", "SELECT ? FROM users"),
    ("SELECT articles.* FROM articles WHERE (articles.created_at BETWEEN $1 AND $2)",
     "SELECT articles.* FROM articles WHERE ( articles.created_at BETWEEN ? AND ? )")])
sql_fx("sql-escaped-literal", "SQL obfuscation: quotes escaped by doubling or by backslash, and a "
       "literal ending in a backslash (" + SQ + ")", "postgresql", [
    ("SELECT * FROM foo LEFT JOIN bar ON 'embedded ''quote'' in string' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"),
    ("SELECT * FROM foo LEFT JOIN bar ON 'embedded \\'quote\\' in string' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"),
    ("SELECT * FROM foo LEFT JOIN bar ON 'backslash\\' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?")])
sql_fx("sql-insert-values", "SQL obfuscation: VALUES groups collapse to ( ? ) (" + SQ + ")", "sqlite", [
    ("INSERT INTO user (id, username) VALUES ('Fred','Smith'), ('John','Smith'), "
     "('Michael','Smith'), ('Robert','Smith');", "INSERT INTO user ( id, username ) VALUES ( ? )"),
    ("INSERT INTO user (id, email, name) VALUES (null, ?, ?)",
     "INSERT INTO user ( id, email, name ) VALUES ( ? )")])
sql_fx("sql-non-parsable", "SQL obfuscation failure: resource and sql.query become 'Non-parsable "
       "SQL query' (DataDog/datadog-agent pkg/trace/agent/obfuscate_test.go "
       "TestSQLResourceWithError)", "postgresql", [
    ("SELECT * FROM users WHERE id = '' AND '", "Non-parsable SQL query")])
fx("db-redis", "db.system redis on a CLIENT span: name redis.query (" + T_UTIL + " TestGetOTelOperation"
   "NameV2_DBSystemOperationName, 'db.system redis client'), type redis (TestGetOTelSpanType, "
   "'db.system only in span'); the resource is the statement quantized to command names (see "
   "db-redis-pipeline)",
   req([span("test-span", CLIENT, {"db.system": "redis"})]), datadog=[{"name": "redis.query", "type": "redis"}])
REDIS_CASES = [  # DataDog/datadog-agent pkg/obfuscate/redis_test.go TestRedisQuantizer
    ("MULTI\nSET k1 v1\nSET k2 v2\nSET k3 v3\nSET k4 v4\nDEL to_del\nEXEC", "MULTI SET SET ..."),
    ("SET toto tata \n \n  EXPIRE toto 15  ", "SET EXPIRE"),
    ("CLIENT LIST", "CLIENT LIST"),
    ("GET k1\nGET k2\nG...", "GET GET ..."),
]
fx("db-redis-pipeline", "QuantizeRedisString: at most three commands then ..., compound CLIENT "
   "command, truncated commands (DataDog/datadog-agent pkg/obfuscate/redis_test.go "
   "TestRedisQuantizer)",
   req([span("pipeline", CLIENT, {"db.system": "redis", "db.statement": q}, sid=f"{i + 1:016x}")
        for i, (q, _) in enumerate(REDIS_CASES)]),
   datadog=[want for _, want in REDIS_CASES])
fx("db-mongodb", "db.system mongodb: type mongodb from a resource db.system (" + T_UTIL + " TestGetOTel"
   "SpanType, 'mongodb db client span'), name mongodb.query (TestGetOTelOperationNameV2_DBSystem"
   "OperationName, 'db.system mongodb client'), db.collection.name kept in meta (" + T_TRANS +
   " TestOtelSpanToDDSpan_DBAttributeMappings, 'db.collection.name (semconv 1.26+) preserved')",
   {"resourceSpans": [rs([span("span_name", CLIENT, {})], {"db.system": "mongodb"}),
                      rs([span("test-span", CLIENT, {"db.system": "mongodb"})], {"service.name": "test-svc"}),
                      rs([span("test-span", CLIENT, {"db.collection.name": "users", "db.system": "mongodb"})],
                         {"service.name": "test-svc"}, scope=("test-lib", ""))]},
   datadog=[{"type": "mongodb"}, {"name": "mongodb.query"}, {"meta:db.collection.name": "users"}])
fx("db-unknown-system", "a db.system Datadog has no type for (couchdb) gives type db (" + T_UTIL +
   " TestGetOTelSpanType, 'other db client span')",
   req([span("span_name", CLIENT, {})], res={"db.system": "couchdb"}), datadog=[{"type": "db"}])
fx("db-without-statement", "a CLIENT span with db.system postgresql and no statement: resource is "
   "the span name (" + T_UTIL + " TestGetOTelResourceV2_DBQueryTextFallback, 'db.system without "
   "statement falls back to span name'), name postgresql.query (" + T_UTIL + " TestGetOTelOperation"
   "NameV2_DBSystemOperationName, 'db.system postgresql client')",
   req([span("span_name", CLIENT, {"db.system": "postgresql"})]),
   datadog=[{"resource": "span_name", "name": "postgresql.query"}])
CASS_CASES = [  # DataDog/datadog-agent pkg/obfuscate/sql_test.go TestCassQuantizer
    ("select key, status, modified from org_check_run where org_id = %s and check in "
     "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
     "select key, status, modified from org_check_run where org_id = ? and check in ( ? )"),
    ("select key, status, modified from org_check_run where org_id = %s and check in (%s , %s , %s )",
     "select key, status, modified from org_check_run where org_id = ? and check in ( ? )"),
    ("select key, status, modified from org_check_run where org_id = %s and check = %s",
     "select key, status, modified from org_check_run where org_id = ? and check = ?"),
    ("SELECT timestamp, processes FROM process_snapshot.minutely WHERE org_id = ? AND host = ? AND "
     "timestamp >= ? AND timestamp <= ?",
     "SELECT timestamp, processes FROM process_snapshot.minutely WHERE org_id = ? AND host = ? AND "
     "timestamp >= ? AND timestamp <= ?"),
]
fx("db-cassandra", "db.system cassandra gives type cassandra (" + T_UTIL + " TestGetOTelSpanType, "
   "'cassandra db client span'), which the agent SQL-obfuscates (DataDog/datadog-agent "
   "pkg/obfuscate/sql_test.go TestCassQuantizer)",
   req([span("q", CLIENT, {"db.system": "cassandra", "db.statement": q}, sid=f"{i + 1:016x}")
        for i, (q, _) in enumerate(CASS_CASES)]),
   datadog=[{"resource": want, "meta:sql.query": want, "type": "cassandra"} for _, want in CASS_CASES])
fx("db-server-kind", "the db rule of getOTelOperationNameV2 needs CLIENT: a SERVER span with "
   "db.system postgresql gets server.request (" + T_UTIL + " TestGetOTelOperationNameV2_DBSystem"
   "OperationName, 'db.system not used for non-client spans')",
   req([span("test-span", SERVER, {"db.system": "postgresql"})]), datadog=[{"name": "server.request"}])

# ---- messaging ----
fx("kafka-produce", "messaging resource = operation + destination, messaging.destination "
   "before messaging.destination.name (" + T_UTIL + " TestFallbackInconsistency_MessagingDestination"
   "Precedence, both cases: 'send old-destination', 'receive new-destination')",
   req([span("span_name", 0, {"messaging.operation": "send", "messaging.destination": "old-destination",
                              "messaging.destination.name": "new-destination"}),
        span("span_name", 0, {"messaging.operation": "receive", "messaging.destination.name": "new-destination"},
             sid="0000000000000002")]),
   datadog=[{"resource": "send old-destination"}, {"resource": "receive new-destination"}])
fx("kafka-consume", "messaging.system + messaging.operation give '<system>.<operation>' on any "
   "non-internal kind: kafka send on a CLIENT span -> kafka.send (" + NAMES_C + "), rabbitmq publish "
   "on a CONSUMER span -> rabbitmq.publish (DataDog/dd-trace-java OpenTelemetry14ConventionsTest "
   "'test span name conventions'); type custom for CONSUMER (" + T_UTIL + " TestSpanKind2Type)",
   req([span("span_name", CLIENT, {"messaging.system": "kafka", "messaging.operation": "send"}),
        span("some-name", CONSUMER, {"messaging.system": "rabbitmq", "messaging.operation": "publish"},
             sid="0000000000000002")], res={}, scope=("libname", "1.2")),
   datadog=[{"name": "kafka.send"}, {"name": "rabbitmq.publish", "type": "custom"}])
fx("rabbitmq-publish-uppercase", v2op(5) + " values normalized (NormalizeTagValue lowercases)",
   req([span("publish", PRODUCER, {"messaging.system": "RabbitMQ", "messaging.operation": "Publish",
                                   "messaging.destination.name": "tasks"})]))
fx("messaging-internal-kind", "the messaging rule of getOTelOperationNameV2 needs a non-internal "
   "kind: a kind-unspecified span with messaging.system kafka and messaging.operation send falls to "
   "the kind's name (input of " + T_OTLPC + " TestOTLPSpanNameV2_OTelCompliantTranslation, whose "
   "OTel-compliant mode lowercases it to 'internal'; the default mode's Kind().String() gives "
   "'Internal', not asserted by a Datadog test)",
   req([span("process", 0, {"messaging.system": "kafka", "messaging.operation": "send"})]))

# ---- RPC ----
fx("grpc-client", "rpc.system grpc on a CLIENT span -> grpc.client.request (" + NAMES_C + "); RPC "
   "resource 'method service' from the span's rpc.method / rpc.service over the resource's (" +
   T_UTIL + " TestGetOTelResource, 'rpc.method in both span and resource (span wins)')",
   {"resourceSpans": [
       rs([span("span_name", CLIENT, {"rpc.system": "grpc"})], {}, scope=("libname", "1.2")),
       rs([span("span_name", 0, {"rpc.method": "span_method", "rpc.service": "span_service"})],
          {"rpc.method": "resource_method", "rpc.service": "resource_service"})]},
   datadog=[{"name": "grpc.client.request"}, {"resource": "span_method span_service"}])
fx("grpc-server", "rpc.system grpc on a SERVER span -> grpc.server.request; rpc.system aws-api on a "
   "SERVER span -> aws-api.server.request (" + NAMES_C + ", names as the receiver makes them), "
   "which the agent normalizer's NormalizeName turns into aws_api.server.request ('-' -> '_', as "
   "in " + SN + " TestNormalizeName 'Too-Long-.' -> 'Too_Long.')",
   req([span("span_name", SERVER, {"rpc.system": "grpc"}),
        span("span_name", SERVER, {"rpc.system": "aws-api"}, sid="0000000000000002")], res={},
       scope=("libname", "1.2")),
   datadog=[{"name": "grpc.server.request"}, {"name": "aws_api.server.request"}])
fx("aws-api-client", "rpc.system aws-api with rpc.service s3 on a CLIENT span -> aws.s3.request (" +
   NAMES_C + ")", req([span("span_name", CLIENT, {"rpc.system": "aws-api", "rpc.service": "s3"})], res={},
                      scope=("libname", "1.2")),
   datadog=[{"name": "aws.s3.request"}])
fx("aws-api-client-no-service", "rpc.system aws-api without rpc.service on a CLIENT span -> "
   "aws.client.request (" + NAMES_C + ")",
   req([span("span_name", CLIENT, {"rpc.system": "aws-api"})], res={}, scope=("libname", "1.2")),
   datadog=[{"name": "aws.client.request"}])

# ---- GraphQL / FaaS / generic ----
fx("graphql", "GraphQL resource: operation type, then the operation name when there is one; "
   "no type -> span name (" + T_UTIL + " TestGetOTelResource, the three 'GraphQL with ...' cases)",
   req([span("span_name", 0, {"graphql.operation.type": "query", "graphql.operation.name": "myQuery"}),
        span("span_name", 0, {"graphql.operation.type": "query"}, sid="0000000000000002"),
        span("span_name", 0, {"graphql.operation.name": "myQuery"}, sid="0000000000000003")]),
   datadog=[{"resource": "query myQuery"}, {"resource": "query"}, {"resource": "span_name"}])
fx("faas-client", "faas.invoked_provider gcp + faas.invoked_name foo on a CLIENT span -> "
   "gcp.foo.invoke; the same on a span of unspecified kind falls through (" + NAMES_C + ")",
   req([span("span_name", CLIENT, {"faas.invoked_provider": "gcp", "faas.invoked_name": "foo"})], res={},
       scope=("libname", "1.2")),
   datadog=[{"name": "gcp.foo.invoke"}])
fx("faas-server", "faas.trigger timer on a SERVER span -> timer.invoke (" + NAMES_C + ")",
   req([span("span_name", SERVER, {"faas.trigger": "timer"})], res={}, scope=("libname", "1.2")),
   datadog=[{"name": "timer.invoke"}])
fx("generic-server-protocol", "network.protocol.name tcp on a SERVER span -> tcp.server.request; a "
   "SERVER span without it -> server.request (" + NAMES_C + ")",
   req([span("span_name", SERVER, {"network.protocol.name": "tcp"}),
        span("span_name", SERVER, {}, sid="0000000000000002")], res={}, scope=("libname", "1.2")),
   datadog=[{"name": "tcp.server.request"}, {"name": "server.request"}])
fx("generic-client", "a CLIENT span without protocol -> client.request (DataDog/dd-trace-java "
   "OpenTelemetry14ConventionsTest 'test span name conventions', CLIENT [:]: the Java tracer's "
   "OTel API applies the same rule)", req([span("some-name", CLIENT, {})]),
   datadog=[{"name": "client.request"}])
fx("kinds-fallback", v2op(14) + ": Producer, Consumer, Internal for UNSPECIFIED",
   req([span("p", PRODUCER, {}, sid="0000000000000001"),
        span("c", CONSUMER, {}, sid="0000000000000002", parent="0000000000000001"),
        span("u", 0, {}, sid="0000000000000003", parent="0000000000000001")]))
fx("operation-name-attribute", "operation.name, resource.name and span.type attributes set name, "
   "resource and type (" + T_UTIL + " TestGetOTelOperationName, 'operation.name attribute'; "
   "TestGetOTelResource, 'normal resource'; TestGetOTelSpanType, 'span.type only in span') and "
   "are not copied to meta",
   req([span("span_name", 0, {"operation.name": "op"}),
        span("span_name", 0, {"resource.name": "res"}, sid="0000000000000002"),
        span("span_name", 0, {"span.type": "span-type"}, sid="0000000000000003")]),
   datadog=[{"name": "op"}, {"resource": "res"}, {"type": "span-type"}])

# ---- gen_ai ----
fx("gen-ai-llm-type", "3.7: any gen_ai.* span attribute gives type llm, over span.type "
   "(otelutil.go GetOTelSpanTypeWithAccessor, TestGetOTelSpanTypeFromGenAI)",
   req([span("chat gpt-4o", CLIENT, {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                                     "gen_ai.usage.input_tokens": 12, "span.type": "http",
                                     "server.address": "api.openai.com"})],
       scope=("opentelemetry.instrumentation.openai_v2", "2.0b0")))

# ---- ids ----
fx("ids-128-bit", "3.1: traceID = low 64 bits (72df520af2bde7a5240031ead750e5f3 -> 2594128270069917171, "
   "otlp_test.go), otel.trace_id full hex, _dd.p.tid high bits on the first span (reference 3.1 "
   "recommendation), parentID", req([span("root", SERVER, {}, sid="0000000000000001"),
                                     span("child", INTERNAL, {}, sid="00000000000000ff",
                                          parent="0000000000000001")]))
fx("ids-64-bit-no-tid", "3.1: a trace id with zero high bits gets no _dd.p.tid",
   req([span("root", SERVER, {}, trace=TRACE2)]))
fx("negative-duration", "a negative duration becomes 0, a zero one stays 0 (" + T_NORM +
   " TestNormalizeNegativeDuration: -50 -> 0; TestNormalizeEmptyDuration)",
   req([span("op", INTERNAL, {}, dur=-50), span("op", INTERNAL, {}, sid="0000000000000002", dur=0)]),
   datadog=[{"duration": "0"}, {"duration": "0"}])

# ---- service / env / version ----
fx("missing-service-name", "no service.name -> otlpresourcenoservicename (" + T_UTIL + " TestGetOTel"
   "Service, 'service not set')", req([span("op", INTERNAL, {})], res={}),
   datadog=[{"service": "otlpresourcenoservicename"}])
fx("missing-service-dd-service", "3.3: no service.name -> DD_SERVICE default (apm_config.default_service)",
   req([span("op", INTERNAL, {})], res={}), config={"DD_SERVICE": "from-env", "DD_ENV": "staging",
                                                    "DD_VERSION": "9.9"})
fx("service-span-attr-wins", "3.3: service.name span attribute before resource (semantic registry "
   "accessor), NormalizeService replaces illegal runs (" + SN + " TestNormalizeService)",
   req([span("op", INTERNAL, {"service.name": "bad$service"}),
        span("op", INTERNAL, {"service.name": "\U0001F4281animal-db\U0001F436"},
             sid="0000000000000002")]),
   datadog=[{"service": "bad_service"}, {"service": "_1animal-db"}])
fx("service-long", "3.3: NormalizeService truncates to 100 bytes (" + SN + " TestNormalizeService)",
   req([span("op", INTERNAL, {})], res={"service.name": "Too$Long$." * 11}),
   datadog=[{"service": "too_long_." * 10}])
fx("env-version-normalized", "env and version are normalized: deployment.environment '  ENV ' -> "
   "_env, service.version '  V1 ' -> _v1 (" + T_TRANS + " TestGetOTelEnv and TestGetOTelVersion, "
   "'normalization', span attributes); the payload env comes from the resource's "
   "deployment.environment.name or deployment.environment (" + T_OTLP + " testOTLPReceiveResource"
   "Spans: 'staging', 'depenv'); a span's deployment.environment wins over the resource's ("
   "TestGetOTelEnv, 'both set (span wins)')",
   {"resourceSpans": [rs([span("op", INTERNAL, {"deployment.environment": "  ENV "})], {"service.name": "svc"}),
                      rs([span("op", INTERNAL, {"service.version": "  V1 "})], {"service.name": "svc"}),
                      rs([span("op", INTERNAL, {})], {"deployment.environment.name": "staging"}),
                      rs([span("op", INTERNAL, {})], {"deployment.environment": "depenv"}),
                      rs([span("op", INTERNAL, {"deployment.environment": "env-span"})],
                         {"deployment.environment": "env-res"})]},
   datadog=[{"meta:env": "_env"}, {"meta:version": "_v1"}, {"payload:env": "staging"},
            {"payload:env": "depenv"}, {"meta:env": "env-span"}])
fx("env-span-attr", "3.4: an env span attribute is kept (meta env set only if absent) and normalized",
   req([span("op", INTERNAL, {"env": "QA"})], res={"service.name": "svc", "deployment.environment": "prod"}))
fx("peer-service", "3.12: peer.service kept in meta, NormalizePeerService (" + SN +
   " TestNormalizePeerService); service is not overridden",
   req([span("op", CLIENT, {"peer.service": "\U0001F428animal-db\U0001F436"})]),
   datadog=[{"meta:peer.service": "_animal-db"}])

# ---- attributes ----
fx("attribute-types", "string span attributes go to meta, int and double ones to metrics; "
   "analytics.event (string 'false' or bool true) sets metrics _dd1.sr.eausr 0/1; a service.name span "
   "attribute wins over the resource's; resource.name and span.type attributes set resource and "
   "type (" + T_OTLP + " testOTLPConvertSpan, third and fourth cases); sampling.priority becomes "
   "_sampling_priority_v1 (" + T_OTLP + " TestOTLPSetAttributes/SetMetricOTLP); the last span, "
   "arrays/maps/bools/bytes as AsString JSON text, follows pdata Value.AsString and no Datadog test",
   {"resourceSpans": [
       rs([span("/path", SERVER, {"name": "john", "http.method": "GET", "http.route": "/path", "approx": 1.2,
                                  "count": 2, "analytics.event": "false", "service.name": "pylons"})],
          {"service.name": "myservice", "service.version": "v1.2.3", "env": "staging"}, scope=("ddtracer", "v2")),
       rs([span("/path", 0, {"service.name": "mongo", "operation.name": "READ", "resource.name": "/path",
                             "span.type": "db", "name": "john", "container.id": "cid",
                             "k8s.container.name": "k8s-container", "http.method": "GET", "http.route": "/path",
                             "approx": 1.2, "count": 2, "analytics.event": True})],
          {"env": "staging"}, scope=("ddtracer", "v2")),
       rs([span("op", INTERNAL, {"sampling.priority": 2})], {"service.name": "shop"}),
       rs([span("op", INTERNAL, {"flag": True, "tags": ["a", "b", 3], "obj": {"z": 1, "a": "x<y"},
                                 "big": 1e21, "small": 1.5e-7})], {"service.name": "shop"})]},
   datadog=[{"service": "pylons", "resource": "GET /path", "meta:name": "john",
             "metrics": {"approx": 1.2, "count": 2, "_dd1.sr.eausr": 0, "_top_level": 1}},
            {"service": "mongo", "resource": "/path", "type": "db", "meta:name": "john",
             "meta:container.id": "cid", "meta:k8s.container.name": "k8s-container",
             "metrics": {"approx": 1.2, "count": 2, "_dd1.sr.eausr": 1, "_top_level": 1}},
            {"metrics:_sampling_priority_v1": 2}, {}])
fx("scope-attributes", "the scope name and version go to meta otel.library.name / otel.library.version "
   "(" + T_OTLP + " testOTLPConvertSpan: ddtracer, v2) and, in the newest code, otel.scope.name / "
   "otel.scope.version too (not asserted by that test)",
   req([span("op", INTERNAL, {})], scope=("ddtracer", "v2")),
   datadog=[{"meta:otel.library.name": "ddtracer", "meta:otel.library.version": "v2"}])
fx("resource-attributes-to-meta", "resource attributes go to meta as strings, never overwriting span "
   "attributes: resource env staging and service.version v1.2.3 (also meta version) land in meta; "
   "the span's peer.service userbase wins over the resource's mypeerservice (" + T_OTLP +
   " testOTLPConvertSpan, first and second cases)",
   {"resourceSpans": [
       rs([span("/path", SERVER, {})], {"service.name": "pylons", "service.version": "v1.2.3", "env": "staging"},
          scope=("ddtracer", "v2")),
       rs([span("/path", SERVER, {"peer.service": "userbase", "deployment.environment": "prod"})],
          {"service.version": "v1.2.3", "service.name": "myservice", "peer.service": "mypeerservice"},
          scope=("ddtracer", "v2"))]},
   datadog=[{"meta:env": "staging", "meta:service.version": "v1.2.3", "meta:version": "v1.2.3"},
            {"meta:peer.service": "userbase", "meta:env": "prod", "meta:deployment.environment": "prod",
             "meta:service.version": "v1.2.3", "meta:version": "v1.2.3"}])
fx("tracestate", "w3c.tracestate meta from the span's trace state (" + T_OTLP + " testOTLPConvertSpan: "
   "TraceState 'state' -> w3c.tracestate 'state')",
   req([span("/path", SERVER, {}, tracestate="state")]), datadog=[{"meta:w3c.tracestate": "state"}])
# Each events case is one call of MarshalEvents in Datadog's test, so each gets its own span here.
EV_CASES = [  # DataDog/datadog-agent pkg/trace/api/otlp_test.go TestMarshalEvents
    ([{"name": "", "attributes": attrs({"message": "OOM"}), "droppedAttributesCount": 3}],
     '[{"attributes":{"message":"OOM"},"dropped_attributes_count":3}]'),
    ([{"name": "boom"}], '[{"name":"boom"}]'),
    ([{"name": "", "droppedAttributesCount": 2}], '[{"dropped_attributes_count":2}]'),
    ([{"timeUnixNano": "123", "name": "boom", "attributes": attrs({"accuracy": "2.40", "message": "OOM"})}],
     '[{"time_unix_nano":123,"name":"boom","attributes":{"accuracy":"2.40","message":"OOM"}}]'),
    ([{"timeUnixNano": "123", "name": "boom", "attributes": attrs({"accuracy": "2.4", "message": "OOM"}),
       "droppedAttributesCount": 2},
      {"timeUnixNano": "456", "name": "exception", "attributes": attrs({
          "exception.message": "OOM", "exception.stacktrace": "1/2/3", "exception.type": "mem"}),
       "droppedAttributesCount": 2}],
     '[{"time_unix_nano":123,"name":"boom","attributes":{"accuracy":"2.4","message":"OOM"},'
     '"dropped_attributes_count":2},{"time_unix_nano":456,"name":"exception","attributes":'
     '{"exception.message":"OOM","exception.stacktrace":"1/2/3","exception.type":"mem"},'
     '"dropped_attributes_count":2}]'),
    # testOTLPConvertSpan's events: a double attribute stays a JSON number
    ([{"timeUnixNano": "123", "name": "boom", "attributes": attrs({"key": "Out of memory", "accuracy": 2.4}),
       "droppedAttributesCount": 2},
      {"timeUnixNano": "456", "name": "exception", "attributes": attrs({
          "exception.message": "Out of memory", "exception.type": "mem", "exception.stacktrace": "1/2/3"}),
       "droppedAttributesCount": 2}],
     '[{"time_unix_nano":123,"name":"boom","attributes":{"key":"Out of memory","accuracy":2.4},'
     '"dropped_attributes_count":2},{"time_unix_nano":456,"name":"exception","attributes":'
     '{"exception.message":"Out of memory","exception.type":"mem","exception.stacktrace":"1/2/3"},'
     '"dropped_attributes_count":2}]'),
]
fx("events-json", "MarshalEvents: time_unix_nano, name, attributes and dropped_attributes_count each "
   "omitted when zero or empty, attribute values typed (" + T_OTLP + " TestMarshalEvents, and "
   "testOTLPConvertSpan for the double 2.4)",
   req([span("op", INTERNAL, {}, sid=f"{i + 1:016x}", events=ev) for i, (ev, _) in enumerate(EV_CASES)]),
   datadog=[{"meta:events": want} for _, want in EV_CASES])
LINK_ID2 = ("abcdef0123456789abcdef0123456789", "fedcba9876543210")
fx("links-json", "MarshalLinks: trace_id, span_id, then tracestate, attributes (as strings) and "
   "dropped_attributes_count only when present (" + T_OTLPC + " TestOTelSpanToDDSpan_OTelCompliant"
   "Translation, 'peer.service attribute with error handling and span links'; the key is "
   "tracestate in the newest code, trace_state in older otlp_test.go TestMarshalSpanLinks)",
   req([span("op", INTERNAL, {}, links=[
       {"traceId": "fedcba98765432100123456789abcdef", "spanId": "abcdef0123456789",
        "traceState": "dd=asdf256,ee=jkl;128", "attributes": attrs({"a1": "v1", "a2": "v2"}),
        "droppedAttributesCount": 24},
       {"traceId": LINK_ID2[0], "spanId": LINK_ID2[1], "attributes": attrs({"a3": "v2", "a4": "v4"})},
       {"traceId": LINK_ID2[0], "spanId": LINK_ID2[1], "droppedAttributesCount": 2},
       {"traceId": LINK_ID2[0], "spanId": LINK_ID2[1]}])]),
   datadog=[{"meta:_dd.span_links":
             '[{"trace_id":"fedcba98765432100123456789abcdef","span_id":"abcdef0123456789",'
             '"tracestate":"dd=asdf256,ee=jkl;128","attributes":{"a1":"v1","a2":"v2"},'
             '"dropped_attributes_count":24},{"trace_id":"abcdef0123456789abcdef0123456789",'
             '"span_id":"fedcba9876543210","attributes":{"a3":"v2","a4":"v4"}},'
             '{"trace_id":"abcdef0123456789abcdef0123456789","span_id":"fedcba9876543210",'
             '"dropped_attributes_count":2},{"trace_id":"abcdef0123456789abcdef0123456789",'
             '"span_id":"fedcba9876543210"}]'}])

# ---- top-level / sampling / chunks ----
TLT = [(1, 0, "mcnulty", 1), (2, 1, "mcnulty", None), (3, 2, "master-db", 1), (4, 1, "redis", 1),
       (5, 1, "mcnulty", None)]  # DataDog/datadog-agent pkg/trace/traceutil/trace_test.go TestTopLevelTypical
fx("top-level-across-services", "legacy top-level in one chunk: the root and each span whose parent has "
   "another service are top-level, children of the same service are not (DataDog/datadog-agent "
   "pkg/trace/traceutil/trace_test.go TestTopLevelTypical: services from service.name span attributes)",
   req([span(f"s{sid}", INTERNAL, {"service.name": svc}, sid=f"{sid:016x}", parent=f"{par:016x}" if par else "")
        for sid, par, svc, _ in TLT], res={"service.name": "mcnulty"}),
   datadog=[{"service": svc, "metrics:_top_level": tl} for _, _, svc, tl in TLT])
fx("top-level-across-resource-spans", "legacy top-level rules: the root, a span whose parent is not "
   "in its chunk, and a span of another service (another ResourceSpans, so another chunk) are "
   "top-level; SERVER and CONSUMER children of the root are not (" + T_UTIL + " TestGetTopLevel"
   "OTelSpans, legacy case: top-level spans 1, 4 and 5)",
   {"resourceSpans": [
       rs([span("s1", 0, {}, trace=T1 + "0", sid="0102030405060708"),
           span("s2", SERVER, {}, trace=T1 + "0", sid="0202030405060708", parent="0102030405060708"),
           span("s3", CONSUMER, {}, trace=T1 + "0", sid="0302030405060708", parent="0102030405060708"),
           span("s4", CLIENT, {}, trace=T1 + "0", sid="0402030405060708", parent="0602030405060708")],
          {"service.name": "svc1"}),
       rs([span("s5", INTERNAL, {}, trace=T1 + "0", sid="0502030405060708", parent="0102030405060708")],
          {"service.name": "svc2"})]},
   datadog=[{"metrics:_top_level": 1}, {"metrics:_top_level": None}, {"metrics:_top_level": None},
            {"metrics:_top_level": 1}, {"metrics:_top_level": 1}])
TL_CASES = [  # DataDog/datadog-agent pkg/trace/api/otlp_test.go TestComputeTopLevelAndMeasured
    (1, 0, SERVER, {"_top_level": 1}), (2, 1, CLIENT, {"_dd.measured": 1}),
    (3, 2, CONSUMER, {"_top_level": 1}), (4, 1, PRODUCER, {"_dd.measured": 1}),
    (6, 1, INTERNAL, {}),
]
fx("top-level-by-span-kind", "compute_top_level_by_span_kind: root, SERVER and CONSUMER spans are "
   "top-level, CLIENT and PRODUCER measured, a root CLIENT both, other INTERNAL spans neither (" +
   T_OTLP + " TestComputeTopLevelAndMeasured; a root span's own trace for the root CLIENT and root "
   "INTERNAL cases)",
   req([span("s", k, {}, sid=f"{sid:016x}", parent=f"{par:016x}" if par else "")
        for sid, par, k, _ in TL_CASES] +
       [span("root-client", CLIENT, {}, trace=T1 + "1", sid="0000000000000001"),
        span("root-internal", INTERNAL, {}, trace=T1 + "2", sid="0000000000000001")]),
   config={"compute_top_level_by_span_kind": True},
   datadog=[{"metrics": m} for _, _, _, m in TL_CASES] +
           [{"metrics": {"_top_level": 1, "_dd.measured": 1}}, {"metrics": {"_top_level": 1}}])
fx("measured-attribute", "with compute_top_level_by_span_kind, a non-root INTERNAL span is neither "
   "top-level nor measured unless its _dd.measured attribute is 1 (" + T_STATS + " TestProcess"
   "OTLPTraces: 'non root span with kind internal and _dd.measured key gets stats with new top "
   "level rules' (top-level hits 0) and 'non root span with kind internal does not get stats')",
   req([span("op", INTERNAL, {"_dd.measured": 1}, trace="0102030405060708090a0b0c0d0e0f10",
             sid="0102030405060708", parent="0202030405060708"),
        span("op", INTERNAL, {}, trace="0102030405060708090a0b0c0d0e0f10",
             sid="0302030405060708", parent="0202030405060708")], res={}, scope=("", "")),
   config={"compute_top_level_by_span_kind": True},
   datadog=[{"metrics": {"_dd.measured": 1}}, {"metrics": {}}])
fx("sampling-priority", "the chunk priority is the trace's sampling priority attribute, the "
   "highest when spans differ, else 1 (" + T_OTLP + " testOTLPReceiveResourceSpans: "
   "_sampling_priority_v1 -1 / 2 and 3 / 0 / none -> -1, 3, 0, 1; sampling.priority -1 -> -1); the "
   "chunks' _dd.p.dm (-4 when a priority was given) is not asserted there",
   req([span("first", 0, {"_sampling_priority_v1": -1}, trace=T1 + "0", sid="0000000000000001"),
        span("second", 0, {"_sampling_priority_v1": 2}, trace=T1 + "1", sid="0a0a0b0c0d0e0f10"),
        span("third", 0, {"_sampling_priority_v1": 3}, trace=T1 + "1", sid="090a0b0c0d0e0f10"),
        span("third", 0, {"_sampling_priority_v1": 0}, trace=T1 + "2", sid="090a0b0c0d0e0f10"),
        span("third", 0, {}, trace=T1 + "3", sid="090a0b0c0d0e0f10"),
        span("first", 0, {"sampling.priority": -1}, trace=T1 + "4", sid="0000000000000001")], res={}),
   datadog=[{"chunk:priority": -1}, {"chunk:priority": 3}, {"chunk:priority": 3}, {"chunk:priority": 0},
            {"chunk:priority": 1}, {"chunk:priority": -1}])
fx("sampling-priority-drop", "priority 0 from _sampling_priority_v1 gives chunk priority 0 (" + T_OTLP +
   " testOTLPReceiveResourceSpans, trace ...0f12) and, ours, no _dd.p.dm",
   req([span("third", 0, {"_sampling_priority_v1": 0}, trace=T1 + "2", sid="090a0b0c0d0e0f10")], res={}),
   datadog=[{"chunk:priority": 0}])
fx("two-traces-two-chunks", "one chunk per trace id within a ResourceSpans (" + T_OTLP + " testOTLP"
   "ReceiveResourceSpans: spans first (trace ...0f10) and second, third (trace ...0f11) give 2 "
   "chunks, the one of first has TraceID 0x090a0b0c0d0e0f10, the other 2 spans; the test gives "
   "first no span id, here it has 1), default priority 1, _dd.p.dm -9",
   req([span("first", 0, {}, trace="0102030405060708090a0b0c0d0e0f10", sid="0000000000000001"),
        span("second", 0, {}, trace="0102030405060708090a0b0c0d0e0f11", sid="0a0a0b0c0d0e0f10"),
        span("third", 0, {}, trace="0102030405060708090a0b0c0d0e0f11", sid="090a0b0c0d0e0f10")],
       res={}, scope=("", "")),
   datadog=[{"traceID": "651345242494996240"}, {}, {}])

# ---- config ----
fx("span-name-as-resource-name", "span_name_as_resource_name: V1 names, the span name is the operation "
   "name (" + T_UTIL + " TestGetOTelOperationName, 'operation name from span name': span_name, "
   "kind unspecified) and the V1 resource is the span name (TestGetOTelResource, 'resource not "
   "set')", req([span("span_name", 0, {})]), config={"span_name_as_resource_name": True},
   datadog=[{"name": "span_name", "resource": "span_name"}])
fx("span-name-remappings", "span_name_remappings: V1 name <scope>.<kind> remapped (" + T_OTLP +
   " TestOTLPNameRemapping: scope libname, span asd of kind unspecified, remapping "
   "libname.unspecified -> new)",
   req([span("asd", 0, {})], res={}, scope=("libname", "1.2")),
   config={"span_name_remappings": {"libname.unspecified": "new"}}, datadog=[{"name": "new"}])
fx("v1-no-scope", "V1 operation name opentelemetry.<kind> when the scope has no name (" + T_UTIL +
   " TestGetOTelOperationName, 'operation name from span kind')",
   req([span("op", CLIENT, {})], scope=("", "")), config={"span_name_remappings": {"unused": "x"}},
   datadog=[{"name": "opentelemetry.client"}])
fx("ignore-resources", "ignore_resources: chunks whose root resource matches are dropped "
   "(agent.go Process, Blacklister.Allows(root))",
   req([span("GET /health", SERVER, {"http.request.method": "GET", "http.route": "/health"}, trace=TRACE),
        span("GET /items", SERVER, {"http.request.method": "GET", "http.route": "/items"}, trace=TRACE2,
             sid="0000000000000002")]), config={"ignore_resources": ["^GET /health$"]})

# ---- host / container ----
fx("fargate", "an ECS Fargate resource is a Fargate source, not a host: hostname '' (" + T_SRC +
   " TestSourceFromAttrs, 'ECS Fargate': source kind aws_ecs_fargate, task ARN); the task_arn "
   "container tag follows " + SRC_S + ", not asserted by that test",
   req([span("op", SERVER, {})], res={"cloud.provider": "aws", "cloud.platform": "aws_ecs",
                                      "aws.ecs.task.arn": "example-task-ARN",
                                      "aws.ecs.task.family": "example-task-family",
                                      "aws.ecs.task.revision": "example-task-revision",
                                      "aws.ecs.launchtype": "fargate"}), hostname=True,
   datadog=[{"payload:hostname": ""}])
fx("k8s-container-tags", "containerID from the resource's k8s.pod.uid; _dd.tags.container from "
   "ContainerMappings and datadog.container.tag.*, not from span attributes (" + T_OTLP +
   " testOTLPReceiveResourceSpans: 1234cid and kube_job:kubejob, image_name:lorem-ipsum, "
   "image_tag:v2.0, team:otel, which the test compares as a set)",
   req([span("first", 0, {"k8s.container.name": "lorem-ipsum"}, trace=T1 + "0", sid="0000000000000001"),
        span("second", 0, {}, trace=T1 + "1", sid="0a0a0b0c0d0e0f10")],
       res={"k8s.pod.uid": "1234cid", "k8s.job.name": "kubejob", "container.image.name": "lorem-ipsum",
            "container.image.tag": "v2.0", "datadog.container.tag.team": "otel"}, scope=("libname", "1.2")),
   datadog=[{"payload:containerID": "1234cid"}, {"payload:containerID": "1234cid"}])
# TestSourceFromAttrs: resource attributes -> hostname source ('' where the test finds none)
SRC_CASES = [
    ("custom hostname", {"datadog.host.name": "example-custom-host-name", "k8s.node.name": "nodeName",
                         "k8s.cluster.name": "clusterName", "container.id": "example-container-id",
                         "host.id": "example-host-id", "host.name": "example-host-name"},
     "example-custom-host-name"),
    ("container ID", {"container.id": "example-container-id"}, ""),
    ("GCP", {"cloud.provider": "gcp", "host.id": "example-host-id",
             "host.name": "example-host-name.c.projectID.internal", "cloud.account.id": "projectID"},
     "example-host-name.projectID"),
    ("GCP, no account id", {"cloud.provider": "gcp", "host.id": "example-host-id",
                            "host.name": "example-host-name.c.projectID.internal"}, ""),
    ("azure", {"cloud.provider": "azure", "host.id": "example-host-id", "host.name": "example-host-name"},
     "example-host-id"),
    ("host id v. hostname", {"host.id": "example-host-id", "host.name": "example-host-name"}, "example-host-id"),
    ("no hostname", {}, ""),
    ("localhost", {"datadog.host.name": "127.0.0.1"}, ""),
]
fx("hostname-host-name", "payload hostname from the resource attributes (" + T_SRC + " TestSourceFromAttrs,"
   " one ResourceSpans per case: custom hostname, container ID, GCP, GCP without account id, azure, "
   "host id v. hostname, no hostname, localhost; no configured fallback hostname here)",
   {"resourceSpans": [rs([span("op", SERVER, {})], a) for _, a, _ in SRC_CASES]}, hostname=True,
   datadog=[{"payload:hostname": want} for _, _, want in SRC_CASES])
fx("hostname-datadog-host-name", "payload hostname from the resource's datadog.host.name, before "
   "_dd.hostname (" + T_OTLP + " testOTLPHostname, first case: resource-hostname) or alone ("
   + T_TRANS + " TestGetOTelHostname, 'datadog.host.name' and '_dd.hostname')",
   {"resourceSpans": [rs([span("op", SERVER, {})], {"datadog.host.name": "resource-hostname",
                                                    "_dd.hostname": "span-hostname"}, scope=("a", "1.2")),
                      rs([span("span_name", SERVER, {})], {"datadog.host.name": "test-host"}),
                      rs([span("span_name", SERVER, {})], {"_dd.hostname": "test-host"})]},
   hostname=True,
   datadog=[{"payload:hostname": "resource-hostname"}, {"payload:hostname": "test-host"},
            {"payload:hostname": "test-host"}])
fx("hostname-aws-ec2", "cloud.provider aws -> host.id (" + T_SRC + " TestSourceFromAttrs, 'AWS EC2'); "
   "k8s.node.name and k8s.cluster.name -> nodeName-clusterName, node name alone -> nodeName (" +
   T_SRC + " TestHostnameKubernetes, first two cases)",
   {"resourceSpans": [
       rs([span("op", SERVER, {})], {"cloud.provider": "aws", "host.id": "example-host-id",
                                     "host.name": "example-host-name"}),
       rs([span("op", SERVER, {})], {"k8s.node.name": "nodeName", "k8s.cluster.name": "clusterName",
                                     "container.id": "example-container-id", "host.id": "example-host-id",
                                     "host.name": "example-host-name"}),
       rs([span("op", SERVER, {})], {"k8s.node.name": "nodeName", "container.id": "example-container-id",
                                     "host.id": "example-host-id", "host.name": "example-host-name"})]},
   hostname=True,
   datadog=[{"payload:hostname": "example-host-id"}, {"payload:hostname": "nodeName-clusterName"},
            {"payload:hostname": "nodeName"}])
fx("pod-uid-container-id", "payload containerID from the resource's container.id, else k8s.pod.uid "
   "(" + T_OTLP + " testOTLPReceiveResourceSpans: '1234cid' for each)",
   {"resourceSpans": [rs([span("op", SERVER, {})], {"container.id": "1234cid"}, scope=("libname", "1.2")),
                      rs([span("op", SERVER, {})], {"k8s.pod.uid": "1234cid"}, scope=("libname", "1.2"))]},
   datadog=[{"payload:containerID": "1234cid"}, {"payload:containerID": "1234cid"}])

# ---- limits ----
fx("truncate-resource", "resource truncated to 5000 bytes (" + T_TRUNC + " TestTruncateResource/under: "
   "'a' x 5000 + 'extra string' -> 'a' x 5000; TestTruncateLongResource: 'TOOLONG' x 5000 -> 5000 bytes)",
   req([span("a" * 5000 + "extra string", INTERNAL, {}),
        span("TOOLONG" * 5000, INTERNAL, {}, sid="0000000000000002")]),
   datadog=[{"resource": "a" * 5000}, {"resource": ("TOOLONG" * 5000)[:5000]}])
TRUNC_K = "k" * 201
fx("truncate-meta", "meta keys over 200 bytes and values over 25000 bytes are cut and get '...', "
   "except values of structured _dd.*.json/protobuf/msgpack tags (" + T_TRUNC + " TestTruncate"
   "StructuredMetaTag: 'v' x 25001 kept under _dd.<'k' x 201>.json, cut to 25000 + '...' under "
   "key.json; TestTruncateMetaKeyTooLong and TestTruncateMetaValueTooLong: 'TOOLONG' x 1000 as a "
   "key, x 25000 as a value, both cut)",
   req([span("op", INTERNAL, {"_dd." + TRUNC_K + ".json": "v" * 25001, "key.json": "v" * 25001}),
        span("op", INTERNAL, {"TOOLONG" * 1000: "foo", "foo": "TOOLONG" * 25000}, sid="0000000000000002")]),
   datadog=[{"meta:_dd." + TRUNC_K + ".json": "v" * 25001, "meta:key.json": "v" * 25000 + "..."},
            {"meta:" + ("TOOLONG" * 1000)[:200] + "...": "foo",
             "meta:foo": ("TOOLONG" * 25000)[:25000] + "..."}])
fx("truncate-name-type", "3.15: operation.name goes through NormalizeTagValue (" + SRC_O +
   " GetOTelOperationNameV2, normalize true: lowercased) then NormalizeName, whose own case "
   "'Too-Long-.' x 11 -> 'Too_Long.' x 10 (" + SN + " TestNormalizeName) it follows in lower "
   "case; type truncated to 100",
   req([span("op", INTERNAL, {"operation.name": "Too-Long-." * 11, "span.type": "t" * 150})]),
   datadog=[{"name": "too_long." * 10}])
UNI_CASES = [("ünicöde", "ünicöde"), ("AlsO:ök", "also:ök"),
             ("Data\U0001F428dog\U0001F436 繋がっ⛰てて", "data_dog_繋がっ_てて")]  # SN TestNormalizeTag
fx("unicode-service", "service names keep non-ASCII letters, lowercased, and turn other runs into '_' ("
   + SN + " TestNormalizeTag cases; they start with a letter, so NormalizeService's NormalizeTagValue "
   "gives the same as NormalizeTag)",
   req([span("op", INTERNAL, {"service.name": name}, sid=f"{i + 1:016x}")
        for i, (name, _) in enumerate(UNI_CASES)]),
   datadog=[{"service": want} for _, want in UNI_CASES])

# ---- sampling weight (written after the hand-made 088-090) ----
SRC_SAMP = ("DataDog/datadog-agent pkg/trace/transform/sampling.go (samplingProbFromTracestate, "
            "SetSampleRateFromTracestate, SetSampleRateFromAttribute)")
T_SAMP = "DataDog/datadog-agent pkg/trace/transform/sampling_test.go"
W_SAMP = ("stats weighted by the chunk root's 1/_sample_rate (DataDog/datadog-agent "
          "pkg/trace/stats/weight.go, statsraw.go RawBucket.add)")
T_CONN = ("open-telemetry/opentelemetry-collector-contrib connector/datadogconnector/"
          "connector_native_test.go")
fx("sample-rate-threshold", "_sample_rate from the OTEP 235 threshold of the tracestate's ot member "
   "(" + SRC_SAMP + "; " + T_SAMP + " TestSamplingProbFromTracestate '50% sampling (th:8)' -> 0.5, "
   "'100% sampling (th:0)' -> 1.0; " + T_CONN + " TestSampleRateInjectedOnRoot 'th encoding 50%', "
   "TestSamplingWeightFromTracestate: Hits 2 for th:8); the child without a tracestate gets no "
   "_sample_rate but weighs as its root: " + W_SAMP + ": root and child count 2 each, the th:0 "
   "trace 1",
   req([span("GET /a", SERVER, {}, tracestate="ot=th:8"),
        span("SELECT", CLIENT, {"db.system": "postgresql"}, sid="0000000000000002",
             parent="0000000000000001"),
        span("GET /b", SERVER, {}, trace=TRACE2, sid="0000000000000003", tracestate="ot=th:0")]),
   datadog=[{"metrics:_sample_rate": 0.5}, {"metrics:_sample_rate": None},
            {"metrics:_sample_rate": 1.0}], num=91, stats_hits=5)
fx("sample-rate-p-value", "_sample_rate from the older power-of-two p value, 2^-p (" + SRC_SAMP + "; "
   + T_SAMP + " TestSamplingProbFromTracestate 'p-encoding 50% (p:1)' -> 0.5, 'p-encoding 6.25% "
   "(p:4)' -> 0.0625, 'p-encoding 100% (p:0)' -> 1.0; " + T_CONN + " TestSampleRateInjectedOnRoot "
   "'p encoding 50%', 'p encoding 6.25%'); " + W_SAMP + ": 2 + 16 + 1 hits",
   req([span("GET /a", SERVER, {}, tracestate="ot=p:1;r:1"),
        span("GET /b", SERVER, {}, trace=TRACE2, sid="0000000000000002",
             tracestate="dd=s:1,ot=p:4;r:4"),
        span("GET /c", SERVER, {}, trace=T1 + "0", sid="0000000000000003", tracestate="ot=p:0")]),
   datadog=[{"metrics:_sample_rate": 0.5}, {"metrics:_sample_rate": 0.0625},
            {"metrics:_sample_rate": 1.0}], num=92, stats_hits=19)
fx("sample-rate-attribute-wins", "a numeric _sample_rate span attribute wins over the tracestate ("
   + SRC_SAMP + "; " + T_SAMP + " TestSetSampleRateFromAttribute 'attribute takes precedence over "
   "tracestate' 0.25 with ot=th:8, 'sets rate from int attribute' 1); a string one is not a rate "
   "('no-op for non-numeric attribute': the tracestate then decides); " + W_SAMP + ": 4 + 1 + 2",
   req([span("GET /a", SERVER, {"_sample_rate": 0.25}, tracestate="ot=th:8"),
        span("GET /b", SERVER, {"_sample_rate": 1}, trace=TRACE2, sid="0000000000000002"),
        span("GET /c", SERVER, {"_sample_rate": "0.25"}, trace=T1 + "0", sid="0000000000000003",
             tracestate="ot=th:8")]),
   datadog=[{"metrics:_sample_rate": 0.25}, {"metrics:_sample_rate": 1.0},
            {"metrics:_sample_rate": 0.5}], num=93, stats_hits=7)
fx("sample-rate-none", "no _sample_rate, weight 1, when the tracestate gives no probability (" + T_SAMP
   + ": 'th absent rv present' ot=rv:abcdefabcdefab, 'non-ot vendor field only' zz=vendorcontent, "
   "TestSamplingProbFromTracestate_Malformed ot=th:zz; p:63 is the 'not sampled' sentinel of "
   + SRC_SAMP + "; a tracestate of 32 members fails W3C parsing, open-telemetry/opentelemetry-"
   "collector-contrib pkg/sampling common.go scanKeyValues)",
   req([span("GET /a", SERVER, {}, tracestate="ot=rv:abcdefabcdefab"),
        span("GET /b", SERVER, {}, trace=TRACE2, sid="0000000000000002", tracestate="zz=vendorcontent"),
        span("GET /c", SERVER, {}, trace=T1 + "0", sid="0000000000000003", tracestate="ot=th:zz"),
        span("GET /d", SERVER, {}, trace=T1 + "1", sid="0000000000000004", tracestate="ot=p:63"),
        span("GET /e", SERVER, {}, trace=T1 + "2", sid="0000000000000005",
             tracestate=",".join([f"k{i}=v" for i in range(31)] + ["ot=th:8"]))]),
   datadog=[{"metrics:_sample_rate": None}] * 5, num=94, stats_hits=5)
fx("stats-computed", "a resource with _dd.stats_computed (a Datadog tracer in OTLP mode computed its "
   "stats) gets no stats from us; its spans are translated as usual (DataDog/datadog-agent "
   "pkg/trace/api/otlp.go receiveResourceSpansV2: Payload.ClientComputedStats when "
   "GetOTelAttrVal(resource, true, '_dd.stats_computed') != ''; pkg/trace/agent/agent.go Process "
   "then skips the concentrator); the second resource, without it, counts 1 hit",
   {"resourceSpans": [rs([span("GET /a", SERVER, {})], {"service.name": "shop",
                                                         "_dd.stats_computed": "true"}),
                      rs([span("GET /b", SERVER, {}, trace=TRACE2, sid="0000000000000002")],
                         {"service.name": "shop"})]},
   num=95, stats_hits=1)
fx("sample-rate-child-only", "a child's tracestate gives the child its _sample_rate (" + SRC_SAMP +
   " sets it on every span it decodes one for) but not the trace's weight, which is the root's ("
   + T_CONN + " TestSampleRateIgnoresNonRootTracestate; " + W_SAMP + "): root and child count 1 "
   "each",
   req([span("GET /a", SERVER, {}),
        span("SELECT", CLIENT, {"db.system": "postgresql"}, sid="0000000000000002",
             parent="0000000000000001", tracestate="ot=th:8")]),
   datadog=[{"metrics:_sample_rate": None}, {"metrics:_sample_rate": 0.5}], num=97, stats_hits=2)

# ---- span links in the span's own field ----
fx("span-links-field", "links also in Span.spanLinks (DataDog/datadog-agent pkg/proto/datadog/trace/"
   "span.proto SpanLink: traceID low 64 bits, traceID_high, spanID, attributes as strings, "
   "tracestate, flags 'W3C trace flags; if set, the high bit (bit 31) must be set'; the agent "
   "forwards tracers' links there since DataDog/datadog-agent#21715), besides the _dd.span_links "
   "meta JSON of the OTLP path (" + SRC_T + " MarshalLinks); OTLP Link.flags 0x301 (sampled, "
   "has-is-remote, is-remote: open-telemetry/opentelemetry-proto trace.proto SpanFlags) -> "
   "0x80000001, flags 0 -> not set (64-bit ids as decimal strings, as the output prints them)",
   req([span("op", INTERNAL, {}, links=[
       {"traceId": "fedcba98765432100123456789abcdef", "spanId": "abcdef0123456789",
        "traceState": "ot=th:8", "flags": 769,
        "attributes": attrs({"link.kind": "retry", "attempt": 2})},
       {"traceId": "000000000000000000000000000000ff", "spanId": "0000000000000001"}])]),
   datadog=[{"spanLinks": [
       {"traceID": "81985529216486895", "traceID_high": "18364758544493064720",
        "spanID": "12379813738877118345", "attributes": {"link.kind": "retry", "attempt": "2"},
        "tracestate": "ot=th:8", "flags": 2147483649},
       {"traceID": "255", "traceID_high": "0", "spanID": "1", "attributes": {}, "tracestate": "",
        "flags": 0}]}], num=96)


def write_all(fill_cmd=None):
    for i, (name, rule, inp, config, hostname, datadog, num, stats_hits) in enumerate(FX, start=1):
        i = num if num is not None else i
        fn = os.path.join(HERE, f"{i:03d}-{name}.json")
        old = {}
        if os.path.exists(fn):
            with open(fn) as f:
                old = json.load(f)
        doc = {"rule": rule}
        if config:
            doc["config"] = config
        doc["input"] = inp
        doc["expect"] = old.get("expect", {})
        with open(fn, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
        if fill_cmd:
            env = dict(os.environ, APM_GOLDEN_DUMP="1", APM_GOLDEN_ONLY=f"{i:03d}-{name}.json")
            out = subprocess.run(fill_cmd, env=env, capture_output=True, text=True).stdout
            head = out[out.index("== "):]
            ignored = int(head.split("(ignored ", 1)[1].split(")", 1)[0])
            body = head.split("\n", 1)[1]
            body = body[:body.index("\n[ ")] if "\n[ " in body else body
            payloads = json.loads(body)
            keep_span = ["service", "name", "resource", "type", "error", "traceID", "spanID",
                         "parentID", "start", "duration", "meta", "metrics"]
            exp = []
            for p in payloads:
                ep = {k: p[k] for k in ("env", "appVersion", "containerID", "tags",
                                         "languageName", "tracerVersion") if k in p}
                if hostname:
                    ep["hostname"] = p["hostname"]
                ep["chunks"] = [{"priority": c["priority"], "tags": c["tags"],
                                 "spans": [{k: s[k] for k in keep_span} for s in c["spans"]]}
                                for c in p["chunks"]]
                exp.append(ep)
            doc["expect"] = {"payloads": exp}
            if ignored:
                doc["expect"]["ignored"] = ignored
        if stats_hits is not None and doc["expect"]:
            doc["expect"]["stats_hits"] = stats_hits
        if datadog and doc["expect"]:
            spans = [(p, c, s) for p in doc["expect"]["payloads"] for c in p["chunks"]
                     for s in c["spans"]]
            assert len(spans) == len(datadog), name
            for (p, c, s), want in zip(spans, datadog):
                if isinstance(want, str):
                    want = {"resource": want}
                    if "sql.query" in s["meta"]:
                        want["meta:sql.query"] = want["resource"]
                for k, v in want.items():
                    where, key = {"meta": (s["meta"], k[5:]), "metrics": (s["metrics"], k[8:]),
                                  "payload": (p, k[8:]), "chunk": (c, k[6:])}.get(
                                      k.split(":", 1)[0], (s, k)) if ":" in k else (s, k)
                    if where.get(key) != v:
                        print(f"{name}: otel2dd gives {k} {where.get(key)!r}, "
                              f"Datadog's test wants {v!r}")
                    if v is None:  # the test wants the key absent
                        where.pop(key, None)
                    else:
                        where[key] = v
        with open(fn, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    write_all(sys.argv[2:] if len(sys.argv) > 2 and sys.argv[1] == "--fill" else None)
    print(len(FX), "fixtures")
