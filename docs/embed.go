// Package docs embeds the generated OpenAPI document and the ReDoc bundle so
// the service serves its documentation without any network access.
package docs

import "embed"

// OpenAPIJSON is the committed OpenAPI 3.1 document, byte for byte as served
// at /openapi.json.
//
//go:embed openapi.json
var OpenAPIJSON []byte

// ReDoc holds the vendored ReDoc bundle under "redoc/".
//
//go:embed redoc
var ReDoc embed.FS
