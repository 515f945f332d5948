package parser

import "reflect"

// Equal reports whether two scripts have the same tree, ignoring positions
// (Pos and End fields, comments' included), the file name, the layout the
// printer keeps from the source (spellings of numbers, the time column,
// line breaks inside events, comments' indentation) and the difference
// between a nil and an empty list. Comments are compared by text and
// order.
func Equal(a, b *Script) bool {
	if a == nil || b == nil {
		return a == b
	}
	return equalValue(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
}

var (
	posType      = reflect.TypeFor[Pos]()
	spellingType = reflect.TypeFor[Spelling]()
)

// layoutFields are the fields of layout, by name.
var layoutFields = map[string]bool{"TimeColumn": true, "Breaks": true, "Indent": true}

func equalValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == posType {
			return true
		}
		t := a.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type == spellingType || layoutFields[f.Name] || f.Name == "File" && t == reflect.TypeFor[Script]() {
				continue
			}
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}
