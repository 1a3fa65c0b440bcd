package domain

// The rules of the contract's fields, each declared once here. Validation
// (api/) derives its checks and Pydantic's error messages from them, the
// OpenAPI document's constraints are injected from them by
// docs/cmd/openapi-fastapi (the swag annotations carry none), and
// migrations/rules_test.go proves the SQL CHECK constraints agree with them
// by inserting each boundary value and the one beyond it.

// Kind is the JSON type of a field, as the contract names it.
type Kind uint8

// The kinds of field.
const (
	KindString   Kind = iota + 1 // a string; MinLength/MaxLength count characters
	KindUUID                     // a string in the uuid format
	KindDateTime                 // a string in the date-time format
	KindInteger                  // an integer; Minimum/Maximum bound it
	KindNumber                   // a float; Minimum/Maximum bound it
	KindEnum                     // one of the strings of Enum
	KindList                     // an array; MinLength/MaxLength count items, Items rules each
)

// Field is the declaration of one field's rule: its JSON name, kind and
// limits. A zero limit is no limit (MinLength 0 is no lower bound).
type Field struct {
	// Name is the JSON name (and the query parameter's name).
	Name string
	Kind Kind
	// Nullable: null is a value of the field (a NULL column; in a PATCH it
	// clears the field).
	Nullable bool
	// MinLength and MaxLength bound a string's characters or a list's
	// items, inclusively; MaxLength 0 is no upper bound.
	MinLength, MaxLength int
	// Pattern is a regular expression a string must match, in the syntax
	// Pydantic checks it with (Rust's regex crate: \s, \S and \d are Unicode
	// classes, $ is the end of the text only).
	Pattern string
	// Minimum and Maximum bound a number inclusively (Pydantic's ge and le);
	// nil is no bound.
	Minimum, Maximum *float64
	// Enum lists the values of a KindEnum field in contract order.
	Enum []string
	// Default is the value an absent request field or query parameter takes
	// (a string or an int); nil: none.
	Default any
	// Items is the rule of each item of a KindList field; nil: the items
	// are objects with rules of their own (BulkItemsField).
	Items *Field
}

// MaxBulkItems is BulkItemsField's upper bound, a constant for callers that
// size arrays with it.
const MaxBulkItems = 1000

// DefaultPageLimit is LimitParam's default, a constant for callers that
// size arrays with it.
const DefaultPageLimit = 20

func bound(f float64) *float64 { return &f }

// The fields of an analysis (AnalysisPublic; AnalysisCreate, AnalysisUpdate
// and AnalysisIngest take the writable ones with the same rules).
var (
	IDField      = Field{Name: "id", Kind: KindUUID}
	OwnerIDField = Field{Name: "owner_id", Kind: KindUUID}
	URLField     = Field{Name: "url", Kind: KindString, MinLength: 1, MaxLength: 2048, Pattern: `^https?://\S+$`}
	TitleField   = Field{Name: "title", Kind: KindString, MinLength: 1, MaxLength: 200}
	StatusField  = Field{Name: "status", Kind: KindEnum, Enum: statusValues(), Default: string(StatusPending)}
	SummaryField = Field{Name: "summary", Kind: KindString, Nullable: true, MaxLength: 10000}
	ScoreField   = Field{Name: "score", Kind: KindNumber, Nullable: true, Minimum: bound(0), Maximum: bound(1)}
	// TagsField: an absent tags field is the empty list.
	TagsField      = Field{Name: "tags", Kind: KindList, MaxLength: 20, Items: &Field{Name: "tag", Kind: KindString, MinLength: 1, MaxLength: 50}}
	NotesField     = Field{Name: "notes", Kind: KindString, Nullable: true, MaxLength: 2000}
	VersionField   = Field{Name: "version", Kind: KindInteger, Minimum: bound(1)}
	CreatedAtField = Field{Name: "created_at", Kind: KindDateTime}
	UpdatedAtField = Field{Name: "updated_at", Kind: KindDateTime}
)

// AnalysisFields are the fields of an analysis in the contract's order,
// which is the order of AnalysisPublic's JSON (Analysis.AppendJSON).
var AnalysisFields = []*Field{
	&IDField, &OwnerIDField, &URLField, &TitleField, &StatusField, &SummaryField,
	&ScoreField, &TagsField, &NotesField, &VersionField, &CreatedAtField, &UpdatedAtField,
}

// The fields of the other request models and the list parameters.
var (
	// IngestIDField is AnalysisIngest's optional client-given id.
	IngestIDField = Field{Name: "id", Kind: KindUUID, Nullable: true}
	// BulkItemsField is BulkIngest's list of AnalysisIngest objects.
	BulkItemsField = Field{Name: "items", Kind: KindList, MinLength: 1, MaxLength: MaxBulkItems}
	// SkipParam is the rows a list skips.
	SkipParam = Field{Name: "skip", Kind: KindInteger, Minimum: bound(0), Default: 0}
	// LimitParam is a list's page size.
	LimitParam = Field{Name: "limit", Kind: KindInteger, Minimum: bound(1), Maximum: bound(100), Default: DefaultPageLimit}
)

func statusValues() []string {
	values := make([]string, len(Statuses))
	for i, s := range Statuses {
		values[i] = string(s)
	}
	return values
}
