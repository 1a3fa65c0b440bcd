// The README's flows, run through a client typed by openapi-typescript from
// the served /openapi.json and sent with openapi-fetch, the way a TypeScript
// team consumes the API. Every request and every answer goes through the
// generated types; each step checks the status and the typed body, and the
// program exits non-zero on the first mismatch.
//
//	BASE_URL=http://127.0.0.1:8000 ADMIN_TOKEN=... node dist/src/flows.js
import { randomUUID } from "node:crypto";
import { deepStrictEqual } from "node:assert/strict";
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/schema.js";

type AnalysisPublic = components["schemas"]["AnalysisPublic"];
type HTTPError = components["schemas"]["HTTPError"];
type HTTPValidationError = components["schemas"]["HTTPValidationError"];

// openapi-fetch types `error` as the union of the operation's documented
// error bodies; a 422 is told apart from an HTTPError by its detail list.
function isValidationError(e: HTTPError | HTTPValidationError | undefined): e is HTTPValidationError {
  return e !== undefined && Array.isArray(e.detail);
}

function validationError(e: HTTPError | HTTPValidationError | undefined): HTTPValidationError {
  check(isValidationError(e), "want an HTTPValidationError", e);
  return e;
}

const baseUrl = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const adminToken = process.env.ADMIN_TOKEN ?? "";

const api = createClient<paths>({ baseUrl });
const admin = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${adminToken}` } });

let steps = 0;
function check(ok: boolean, what: string, got?: unknown): asserts ok {
  if (!ok) {
    throw new Error(`${what}${got === undefined ? "" : `: got ${JSON.stringify(got)}`}`);
  }
  steps++;
}

function expectStatus(response: Response, want: number, what: string, body?: unknown): void {
  check(response.status === want, `${what}: status ${response.status}, want ${want}`, body);
}

const owner = randomUUID();

// Create with the fields the generated AnalysisCreate type requires: no
// summary, score, tags or notes (they were required before "default": null
// was removed).
const created = await api.POST("/api/v1/analyses", {
  body: { owner_id: owner, url: "https://example.com/flows", title: "first", status: "pending" },
});
expectStatus(created.response, 201, "create", created.error);
check(created.data !== undefined, "create: no body");
const analysis: AnalysisPublic = created.data;
check(analysis.version === 1 && analysis.owner_id === owner, "create: version and owner", analysis);
check(analysis.summary === null && analysis.score === null && analysis.notes === null, "create: nullable fields are null", analysis);
deepStrictEqual(analysis.tags, []);
check(created.response.headers.get("Location") === `/api/v1/analyses/${analysis.id}`, "create: Location", created.response.headers.get("Location"));
const path = { analysis_id: analysis.id };

// Read: write-through made it a HIT; the ETag is the quoted version.
const read = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path } });
expectStatus(read.response, 200, "read", read.error);
check(read.data?.title === "first", "read: title", read.data);
const etag = read.response.headers.get("ETag");
check(etag === '"1"', "read: ETag", etag);
check(read.response.headers.get("X-Cache") === "HIT", "read: X-Cache", read.response.headers.get("X-Cache"));

// If-None-Match through the generated header parameter: 304, no body.
const notModified = await api.GET("/api/v1/analyses/{analysis_id}", {
  params: { path, header: { "if-none-match": etag } },
});
expectStatus(notModified.response, 304, "read with if-none-match", notModified.error);
check(notModified.data === undefined && !notModified.error, "304 has no body", notModified.error);

// PATCH one field, conditionally.
const patched = await api.PATCH("/api/v1/analyses/{analysis_id}", {
  params: { path, header: { "if-match": etag } },
  body: { title: "second" },
});
expectStatus(patched.response, 200, "patch title", patched.error);
check(patched.data?.title === "second" && patched.data.version === 2, "patch: title and version", patched.data);
check(patched.data.url === analysis.url && patched.data.status === "pending", "patch: other fields unchanged", patched.data);
check(patched.response.headers.get("ETag") === '"2"', "patch: ETag", patched.response.headers.get("ETag"));

// A stale If-Match: 412 with the typed HTTPError.
const stale = await api.PATCH("/api/v1/analyses/{analysis_id}", {
  params: { path, header: { "if-match": etag } },
  body: { status: "completed" },
});
expectStatus(stale.response, 412, "patch with a stale if-match", stale.data);
check(stale.error?.detail === "Precondition Failed", "412 detail", stale.error);
const staleDelete = await api.DELETE("/api/v1/analyses/{analysis_id}", { params: { path, header: { "if-match": '"1"' } } });
expectStatus(staleDelete.response, 412, "delete with a stale if-match", staleDelete.error);

// null clears a nullable field.
const cleared = await api.PATCH("/api/v1/analyses/{analysis_id}", { params: { path }, body: { score: 0.5, summary: "s" } });
expectStatus(cleared.response, 200, "patch score", cleared.error);
const unset = await api.PATCH("/api/v1/analyses/{analysis_id}", { params: { path }, body: { score: null } });
expectStatus(unset.response, 200, "patch score null", unset.error);
check(unset.data?.score === null && unset.data.summary === "s" && unset.data.version === 4, "patch null clears only score", unset.data);

// 422 read through the typed HTTPValidationError.
const invalid = await api.PATCH("/api/v1/analyses/{analysis_id}", { params: { path }, body: { title: "" } });
expectStatus(invalid.response, 422, "patch with an empty title", invalid.data);
const validation = validationError(invalid.error);
const first = validation.detail?.[0];
check(first?.type === "string_too_short" && first.msg === "String should have at least 1 character", "422 detail", validation);
deepStrictEqual(first.loc, ["body", "title"]);
const badQuery = await api.GET("/api/v1/analyses", { params: { query: { limit: 1000 } } });
expectStatus(badQuery.response, 422, "list with limit=1000", badQuery.data);
deepStrictEqual(validationError(badQuery.error).detail?.[0]?.loc, ["query", "limit"]);
const unknown = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path: { analysis_id: randomUUID() } } });
expectStatus(unknown.response, 404, "read an unknown id", unknown.data);
check(unknown.error?.detail === "Analysis not found", "404 detail", unknown.error);

// Lists, filtered by the AnalysisStatus enum.
const list = await api.GET("/api/v1/analyses", { params: { query: { owner_id: owner, status: "pending", limit: 5 } } });
expectStatus(list.response, 200, "list", list.error);
check(list.data?.count === 1 && list.data.data[0]?.id === analysis.id, "list: the analysis", list.data);
const userList = await api.GET("/api/v1/users/{owner_id}/analyses", { params: { path: { owner_id: owner }, query: { skip: 0 } } });
expectStatus(userList.response, 200, "user list", userList.error);
check(userList.data?.data[0]?.title === "second", "user list: reads the PATCH", userList.data);

// Bulk ingest (write-behind) with client-given ids: readable at once.
const ids = [randomUUID(), randomUUID()];
const bulk = await api.POST("/api/v1/analyses/bulk", {
  body: {
    items: ids.map((id, i) => ({ id, owner_id: owner, url: `https://example.com/bulk/${i}`, title: `bulk ${i}`, status: "completed" as const, tags: ["bulk"] })),
  },
});
expectStatus(bulk.response, 202, "bulk", bulk.error);
check(bulk.data?.accepted === 2, "bulk: accepted", bulk.data);
deepStrictEqual(bulk.data.ids, ids);
for (const id of ids) {
  const got = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path: { analysis_id: id } } });
  expectStatus(got.response, 200, `read bulk item ${id}`, got.error);
  check(got.data?.status === "completed", "bulk item status", got.data);
}

// Admin calls need the bearer token.
const anonymous = await api.GET("/api/v1/cache/stats");
expectStatus(anonymous.response, 401, "cache stats without a token", anonymous.data);
check(anonymous.error?.detail === "Not authenticated", "401 detail", anonymous.error);
const flushed = await admin.POST("/api/v1/cache/write-behind/flush");
expectStatus(flushed.response, 200, "flush", flushed.error);
check(typeof flushed.data?.flushed === "number", "flush: count", flushed.data);
const afterFlush = await api.GET("/api/v1/users/{owner_id}/analyses", { params: { path: { owner_id: owner } } });
check(afterFlush.data?.count === 3, "user list after flush has the bulk items", afterFlush.data);
const invalidated = await admin.POST("/api/v1/cache/invalidate", { body: { pattern: "analysis:*" } });
expectStatus(invalidated.response, 200, "invalidate by pattern", invalidated.error);
check((invalidated.data?.invalidated ?? 0) >= 1, "invalidate: count", invalidated.data);
const miss = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path } });
check(miss.response.headers.get("X-Cache") === "MISS", "read after invalidation is a MISS", miss.response.headers.get("X-Cache"));
const none = await admin.POST("/api/v1/cache/invalidate", { body: {} });
expectStatus(none.response, 422, "invalidate with no selector", none.data);
check(validationError(none.error).detail?.[0]?.type === "value_error", "invalidate 422 type", none.error);
const cacheStats = await admin.GET("/api/v1/cache/stats");
expectStatus(cacheStats.response, 200, "cache stats", cacheStats.error);
check(cacheStats.data !== undefined && cacheStats.data.hits >= 1 && cacheStats.data.misses >= 1, "cache stats: counters", cacheStats.data);
check(typeof cacheStats.data.write_behind.pending === "number" && typeof cacheStats.data.stampede.computations === "number", "cache stats: nested", cacheStats.data);

// Stats and operations.
const stats = await api.GET("/api/v1/analyses/stats");
expectStatus(stats.response, 200, "stats", stats.error);
check(stats.data !== undefined && stats.data.total >= 0 && typeof stats.data.by_status.completed === "number", "stats body", stats.data);
const health = await api.GET("/health");
check(health.data?.status === "ok", "health", health.data);
const ready = await api.GET("/ready");
check(ready.data?.status === "ok" && ready.data.checks.postgres === "ok" && ready.data.checks.redis === "ok", "ready", ready.data);

// Delete with the current ETag, then it is gone.
const current = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path } });
const deleted = await api.DELETE("/api/v1/analyses/{analysis_id}", {
  params: { path, header: { "if-match": current.response.headers.get("ETag") ?? "" } },
});
expectStatus(deleted.response, 204, "delete", deleted.error);
const gone = await api.GET("/api/v1/analyses/{analysis_id}", { params: { path } });
expectStatus(gone.response, 404, "read after delete", gone.data);

console.log(`typescript client flows: ${steps} checks passed against ${baseUrl}`);
