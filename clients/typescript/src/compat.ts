// Code a TypeScript team writes against the types generated from FastAPI's
// document for this API. Every declaration below is a rule of the contract
// ("FastAPI behaviour to reproduce", OpenAPI); each one failed to compile
// against the types of the document before those rules were enforced, so
// `tsc --strict` on this file is the proof that generated clients compile
// unchanged. Nothing here runs: flows.ts sends the same shapes to the service.
import type { components, paths } from "../generated/schema.js";

type Schemas = components["schemas"];
type Analysis = paths["/api/v1/analyses/{analysis_id}"];

// No "default": null: optional nullable fields stay optional, so a PATCH may
// send one field (openapi-typescript makes a property with a default required).
export const patchTitleOnly: Schemas["AnalysisUpdate"] = { title: "only the title" };
export const patchClearScore: Schemas["AnalysisUpdate"] = { score: null };

// Create and bulk items need neither summary, score, tags nor notes.
export const createMinimal: Schemas["AnalysisCreate"] = {
  owner_id: "00000000-0000-4000-8000-000000000000",
  url: "https://example.com/a",
  title: "t",
  status: "pending", // required in the generated type: it has a default ("pending"), as in FastAPI's document
};
export const ingestWithId: Schemas["AnalysisIngest"] = { ...createMinimal, id: "00000000-0000-4000-8000-000000000001" };

// One AnalysisStatus component, used by every status.
export const status: Schemas["AnalysisStatus"] = "completed";
export const statuses: Array<Schemas["AnalysisPublic"]["status"]> = [status, createMinimal.status];
export const listByStatus: NonNullable<paths["/api/v1/analyses"]["get"]["parameters"]["query"]> = { status };

// Header parameters named as FastAPI names them.
export const ifMatch: NonNullable<Analysis["patch"]["parameters"]["header"]> = { "if-match": '"1"' };
export const ifMatchDelete: NonNullable<Analysis["delete"]["parameters"]["header"]> = { "if-match": "*" };
export const ifNoneMatch: NonNullable<Analysis["get"]["parameters"]["header"]> = { "if-none-match": '"1"' };

// The contract's component names.
export const invalidateByPattern: Schemas["CacheInvalidate"] = { pattern: "analysis:*" };
export const invalidateByTags: Schemas["CacheInvalidate"] = { tags: ["user:00000000-0000-4000-8000-000000000000"] };
export const invalidated: Schemas["CacheInvalidated"] = { invalidated: 0 };
export const flushed: Schemas["WriteBehindFlushed"] = { flushed: 0 };

// Errors as FastAPI's responses= documents them: HTTPError bodies, and a 304
// without content.
type ErrorBody<R, S extends keyof R> = R[S] extends { content: { "application/json": infer B } } ? B : never;
export const notFound: ErrorBody<Analysis["get"]["responses"], 404> = { detail: "Analysis not found" };
export const preconditionFailed: ErrorBody<Analysis["patch"]["responses"], 412> = { detail: "Precondition Failed" };
export const tooLarge: ErrorBody<paths["/api/v1/analyses/bulk"]["post"]["responses"], 413> = { detail: "Request Entity Too Large" };
export const conflict: ErrorBody<paths["/api/v1/analyses"]["post"]["responses"], 409> = { detail: "Conflict" };
export const unauthorized: ErrorBody<paths["/api/v1/cache/stats"]["get"]["responses"], 401> = { detail: "Not authenticated" };
export const unavailable: ErrorBody<paths["/api/v1/cache/invalidate"]["post"]["responses"], 503> = { detail: "Admin API is disabled" };
export const invalid: ErrorBody<Analysis["patch"]["responses"], 422> = {
  detail: [{ type: "string_too_short", loc: ["body", "title"], msg: "String should have at least 1 character", input: "" }],
};
export const notModified: Analysis["get"]["responses"][304]["content"] = undefined;
