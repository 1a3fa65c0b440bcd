package api

// This file holds only the general API information of the OpenAPI document.
// It must stay free of handlers: swag reads the general info from the file
// passed with -g, and a handler's @Description there would overwrite the
// API description.

//	@title						Analysis Cache Service
//	@version					1.0.0
//	@description				A FastAPI-compatible Analysis CRUD API that shows how to put Redis in front of Postgres correctly: cache-aside with fill leases, write-through with a version guard, write-behind through a Redis stream, namespace and tag invalidation, and stampede-protected statistics.
//	@externalDocs.description	Design: key layout, entry format and guarantees
//	@externalDocs.url			https://github.com/analysis-cache/service/blob/main/docs/design.md
//	@securityDefinitions.bearerauth	HTTPBearer

// apiInfo anchors the general API comment above for swag; it has no other use.
//
//lint:ignore U1000 the anchor of swag's general API info is never referenced
const apiInfo = "Analysis Cache Service"
