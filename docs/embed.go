// Package docs embeds the generated OpenAPI document, the Swagger UI assets
// and the ReDoc bundle so the service serves its documentation without any
// network access.
package docs

import "embed"

// OpenAPIJSON is the committed OpenAPI 3.1 document, byte for byte as served
// at /openapi.json.
//
//go:embed openapi.json
var OpenAPIJSON []byte

// SwaggerUI holds the vendored Swagger UI files under "swagger-ui/": the
// bundle, its stylesheet, the favicons and oauth2-redirect.html, without
// source maps (see swagger-ui/README.md).
//
//go:embed swagger-ui
var SwaggerUI embed.FS

// ReDoc holds the vendored ReDoc bundle under "redoc/".
//
//go:embed redoc
var ReDoc embed.FS
