package telemetry

import (
	"math"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file writes OTLP's ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1/trace_service.proto) in protobuf's
// wire format straight from the provider's spans, into one buffer reused from
// export to export, the field numbers those .proto files give. A nested
// message is written in place and its length put before it afterwards:
// one byte is set aside for it, which holds any length under 128, and the
// message is moved along when its length needs more.

// traceEncoder encodes batches of spans; its buffers are reused.
type traceEncoder struct {
	buf    []byte
	groups []spanGroup
}

// spanGroup is the spans of one tracer (instrumentation scope), by their
// index in the batch.
type spanGroup struct {
	tracer *tracer
	spans  []int
}

// encode returns the ExportTraceServiceRequest of spans, all of one
// provider (and so of one resource). The result is the encoder's buffer:
// it is valid until the next call.
func (e *traceEncoder) encode(spans []*span) []byte {
	b := e.buf[:0]
	if len(spans) == 0 {
		e.buf = b
		return b
	}
	e.group(spans)
	res := spans[0].tracer.p.res
	var rs int
	b, rs = beginMessage(b, 1) // ExportTraceServiceRequest.resource_spans
	var r int
	b, r = beginMessage(b, 1) // ResourceSpans.resource
	if res != nil {
		for it := res.Iter(); it.Next(); {
			b = appendKeyValue(b, 1, it.Attribute()) // Resource.attributes
		}
	}
	b = endMessage(b, r)
	for _, g := range e.groups {
		var ss int
		b, ss = beginMessage(b, 2) // ResourceSpans.scope_spans
		b = appendScope(b, g.tracer.scope)
		for _, k := range g.spans {
			b = appendSpan(b, spans[k])
		}
		b = appendString(b, 3, g.tracer.scope.SchemaURL) // ScopeSpans.schema_url
		b = endMessage(b, ss)
	}
	if res != nil {
		b = appendString(b, 3, res.SchemaURL()) // ResourceSpans.schema_url
	}
	b = endMessage(b, rs)
	e.buf = b
	return b
}

// group sorts spans into e.groups, one per tracer, in the order each is
// first seen (a batch holds one or two: a linear search).
func (e *traceEncoder) group(spans []*span) {
	groups := e.groups[:0]
	for k, s := range spans {
		found := slices.IndexFunc(groups, func(g spanGroup) bool { return g.tracer == s.tracer })
		if found < 0 {
			found = len(groups)
			if cap(groups) > len(groups) { // reuse the slot's slice of indexes
				groups = groups[:found+1]
				groups[found].spans = groups[found].spans[:0]
			} else {
				groups = append(groups, spanGroup{})
			}
			groups[found].tracer = s.tracer
		}
		groups[found].spans = append(groups[found].spans, k)
	}
	e.groups = groups
}

func appendScope(b []byte, scope instrumentation.Scope) []byte {
	var m int
	b, m = beginMessage(b, 1) // ScopeSpans.scope
	b = appendString(b, 1, scope.Name)
	b = appendString(b, 2, scope.Version)
	for it := scope.Attributes.Iter(); it.Next(); {
		b = appendKeyValue(b, 3, it.Attribute())
	}
	return endMessage(b, m)
}

// appendSpan appends s as ScopeSpans.spans, with the fields the OTLP
// exporters of opentelemetry-go set.
func appendSpan(b []byte, s *span) []byte {
	var m int
	b, m = beginMessage(b, 2) // ScopeSpans.spans
	sc := s.sc
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, 1, tid[:])
	b = appendBytes(b, 2, sid[:])
	b = appendString(b, 3, sc.TraceState().String())
	parent := s.parent
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, 4, psid[:])
	}
	b = appendString(b, 5, s.name)
	b = appendUint(b, 6, uint64(spanKind(s.kind)))
	b = appendFixed64(b, 7, unixNano(s.start.UnixNano()))
	b = appendFixed64(b, 8, unixNano(s.end.UnixNano()))
	for _, kv := range s.attrs {
		b = appendKeyValue(b, 9, kv)
	}
	b = appendUint(b, 10, clampCount(s.droppedAttrs))
	for _, ev := range s.events {
		var em int
		b, em = beginMessage(b, 11)
		b = appendFixed64(b, 1, unixNano(ev.Time.UnixNano()))
		b = appendString(b, 2, ev.Name)
		for _, kv := range ev.Attributes {
			b = appendKeyValue(b, 3, kv)
		}
		b = appendUint(b, 4, clampCount(ev.DroppedAttributeCount))
		b = endMessage(b, em)
	}
	b = appendUint(b, 12, clampCount(s.droppedEvents))
	for _, l := range s.links {
		var lm int
		b, lm = beginMessage(b, 13)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendBytes(b, 1, ltid[:])
		b = appendBytes(b, 2, lsid[:])
		b = appendString(b, 3, l.SpanContext.TraceState().String())
		for _, kv := range l.Attributes {
			b = appendKeyValue(b, 4, kv)
		}
		b = appendUint(b, 5, clampCount(l.DroppedAttributeCount))
		b = protowire.AppendTag(b, 6, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		b = endMessage(b, lm)
	}
	b = appendUint(b, 14, clampCount(s.droppedLinks))
	st := s.status
	var sm int
	b, sm = beginMessage(b, 15) // always present, as the SDK's exporters send it
	b = appendString(b, 2, st.Description)
	b = appendUint(b, 3, uint64(statusCode(st.Code)))
	b = endMessage(b, sm)
	b = protowire.AppendTag(b, 16, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, spanFlags(sc.TraceFlags(), parent))
	return endMessage(b, m)
}

// spanFlags is OTLP's Span.flags: the W3C trace flags, and whether the
// parent is remote (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK 0x100 says that
// this is known, SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK 0x200 that it is).
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	flags := uint32(tf) | 0x100
	if parent.IsRemote() {
		flags |= 0x200
	}
	return flags
}

// spanKind is OTLP's Span.SpanKind of k.
func spanKind(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

// statusCode is OTLP's Status.StatusCode of c (whose numbers differ from
// the SDK's).
func statusCode(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func unixNano(ns int64) uint64 { return uint64(max(0, ns)) }

func clampCount(n int) uint64 { return uint64(min(max(0, n), math.MaxUint32)) }

// appendKeyValue appends kv as a KeyValue message in field num.
func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	if kv.Value.Type() == attribute.STRING && len(kv.Key) < 0x80 {
		// The common case, its lengths known before it is written: a
		// short key and a string value (KeyValue{key, AnyValue{string_value}}).
		v := kv.Value.AsString()
		anyLen := 1 + protowire.SizeVarint(uint64(len(v))) + len(v)
		kvLen := 1 + 1 + len(kv.Key) + 1 + protowire.SizeVarint(uint64(anyLen)) + anyLen
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(kvLen))
		b = append(b, 1<<3|byte(protowire.BytesType), byte(len(kv.Key)))
		b = append(b, kv.Key...)
		b = append(b, 2<<3|byte(protowire.BytesType))
		b = protowire.AppendVarint(b, uint64(anyLen))
		b = append(b, 1<<3|byte(protowire.BytesType))
		b = protowire.AppendVarint(b, uint64(len(v)))
		return append(b, v...)
	}
	var m int
	b, m = beginMessage(b, num)
	b = appendString(b, 1, string(kv.Key))
	b = appendAnyValue(b, 2, kv.Value)
	return endMessage(b, m)
}

// appendAnyValue appends v as an AnyValue message in field num; its oneof
// field is written even when it holds the zero value.
func appendAnyValue(b []byte, num protowire.Number, v attribute.Value) []byte {
	var m int
	b, m = beginMessage(b, num)
	switch v.Type() {
	case attribute.BOOL:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		var a int
		b, a = beginMessage(b, 5) // ArrayValue
		b = appendArray(b, v)
		b = endMessage(b, a)
	case attribute.MAP:
		var l int
		b, l = beginMessage(b, 6) // KeyValueList
		for _, kv := range v.AsMap() {
			b = appendKeyValue(b, 1, kv)
		}
		b = endMessage(b, l)
	case attribute.EMPTY:
	default:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, "INVALID")
	}
	return endMessage(b, m)
}

// appendArray appends the elements of the list v as ArrayValue.values.
func appendArray(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOLSLICE:
		return appendValues(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return appendValues(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return appendValues(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return appendValues(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return appendValues(b, v.AsSlice(), func(e attribute.Value) attribute.Value { return e })
	}
	return b
}

// appendValues appends each element of es, made a value by value, as an
// ArrayValue.values entry.
func appendValues[T any](b []byte, es []T, value func(T) attribute.Value) []byte {
	for _, e := range es {
		b = appendAnyValue(b, 1, value(e))
	}
	return b
}

// appendString appends a string field, unless s is empty (proto3's
// default, not written).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendUint appends a varint field, unless v is 0.
func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendFixed64 appends a fixed64 field, unless v is 0.
func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// beginMessage appends the tag of a message field and one byte for its
// length; it returns where the message's bytes start, for endMessage.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b) + 1
}

// endMessage sets the length of the message that starts at start, moving
// it along when the length takes more than the byte set aside.
func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[start+extra:], b[start:start+n])
	protowire.AppendVarint(b[start-1:start-1], uint64(n))
	return b
}
