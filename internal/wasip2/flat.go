package wasip2

import (
	"context"
	"fmt"
	"strings"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
)

// The functions a wasi:http handler calls on every request, written on
// core values (component.FlatFunc): the same semantics as their HostFuncs
// in http.go and wasip2.go, which serve an import of any other type, and
// the rare cases (an unknown method, a stream's error) through Set.

// Types as component.Signature spells them.
const (
	sigTypes     = "wasi:http/types@0.2#"
	sigStreams   = "wasi:io/streams@0.2#"
	streamErrSig = "variant{last-operation-failed(own<wasi:io/error@0.2#error>), closed}"
	errorCodeSig = "variant{DNS-timeout, DNS-error(record{rcode: option<string>, info-code: option<u16>}), destination-not-found, destination-unavailable, destination-IP-prohibited, destination-IP-unroutable, connection-refused, connection-terminated, connection-timeout, connection-read-timeout, connection-write-timeout, connection-limit-reached, TLS-protocol-error, TLS-certificate-error, TLS-alert-received(record{alert-id: option<u8>, alert-message: option<string>}), HTTP-request-denied, HTTP-request-length-required, HTTP-request-body-size(option<u64>), HTTP-request-method-invalid, HTTP-request-URI-invalid, HTTP-request-URI-too-long, HTTP-request-header-section-size(option<u32>), HTTP-request-header-size(option<record{field-name: option<string>, field-size: option<u32>}>), HTTP-request-trailer-section-size(option<u32>), HTTP-request-trailer-size(record{field-name: option<string>, field-size: option<u32>}), HTTP-response-incomplete, HTTP-response-header-section-size(option<u32>), HTTP-response-header-size(record{field-name: option<string>, field-size: option<u32>}), HTTP-response-body-size(option<u64>), HTTP-response-trailer-section-size(option<u32>), HTTP-response-trailer-size(record{field-name: option<string>, field-size: option<u32>}), HTTP-response-transfer-coding(option<string>), HTTP-response-content-coding(option<string>), HTTP-response-timeout, HTTP-upgrade-failed, HTTP-protocol-error, loop-detected, configuration-error, internal-error(option<string>)}"
)

func own(resource string) string    { return "own<" + resource + ">" }
func borrow(resource string) string { return "borrow<" + resource + ">" }

// flatObject is the host object behind core argument i, a borrowed handle.
func flatObject[T any](c *component.FlatCall, i int) (T, error) {
	v, err := c.Borrow(i)
	t, ok := v.(T)
	if err == nil && !ok {
		err = fmt.Errorf("handle of a %T, not a %T", v, t)
	}
	return t, err
}

// flatOwned is the host object behind core argument i, an owned handle
// the call takes, and its representation.
func flatOwned[T any](c *component.FlatCall, i int) (T, uint32, error) {
	v, rep, err := c.Own(i)
	t, ok := v.(T)
	if err == nil && !ok {
		err = fmt.Errorf("handle of a %T, not a %T", v, t)
	}
	return t, rep, err
}

// setString sets an option<string> result to some(s).
func setString(c *component.FlatCall, s string) error {
	ptr, n, err := c.Context().LowerString(s)
	if err != nil {
		return err
	}
	return c.SetCase(1, func(payload uint32) error {
		if err := c.Context().StoreU32(payload, ptr); err != nil {
			return err
		}
		return c.Context().StoreU32(payload+4, n)
	})
}

func addFlat(h *component.Host) {
	h.Flat = map[string]component.FlatFunc{}
	add := func(key, sig string, f func(context.Context, *component.FlatCall) error) {
		h.Flat[key] = component.FlatFunc{Type: sig, Func: f}
	}
	const (
		request  = sigTypes + "incoming-request"
		inBody   = sigTypes + "incoming-body"
		trailers = sigTypes + "future-trailers"
		fieldsR  = sigTypes + "fields"
		response = sigTypes + "outgoing-response"
		outBody  = sigTypes + "outgoing-body"
		outparam = sigTypes + "response-outparam"
		input    = sigStreams + "input-stream"
		output   = sigStreams + "output-stream"
	)
	add(sigTypes+"[method]incoming-request.method",
		"func("+borrow(request)+") -> variant{get, head, post, put, delete, connect, options, trace, patch, other(string)}",
		func(_ context.Context, c *component.FlatCall) error {
			r, err := flatObject[*IncomingRequest](c, 0)
			if err != nil {
				return err
			}
			m := methodValue(r.Method)
			if m.Value != nil {
				return c.Set(m)
			}
			return c.SetCase(m.Case, nil)
		})
	add(sigTypes+"[method]incoming-request.path-with-query", "func("+borrow(request)+") -> option<string>",
		func(_ context.Context, c *component.FlatCall) error {
			r, err := flatObject[*IncomingRequest](c, 0)
			if err != nil {
				return err
			}
			return setString(c, r.PathWithQuery)
		})
	add(sigTypes+"[method]incoming-request.consume", "func("+borrow(request)+") -> result<"+own(inBody)+">",
		func(_ context.Context, c *component.FlatCall) error {
			r, err := flatObject[*IncomingRequest](c, 0)
			if err != nil {
				return err
			}
			if b, got := r.consume(); got {
				return c.SetOwn(b)
			}
			return c.SetCase(1, nil)
		})
	add(sigTypes+"[method]incoming-body.stream", "func("+borrow(inBody)+") -> result<"+own(input)+">",
		func(_ context.Context, c *component.FlatCall) error {
			b, err := flatObject[*incomingBody](c, 0)
			if err != nil {
				return err
			}
			if s, got := b.takeStream(); got {
				return c.SetOwn(s)
			}
			return c.SetCase(1, nil)
		})
	add(sigTypes+"[static]incoming-body.finish", "func("+own(inBody)+") -> "+own(trailers),
		func(_ context.Context, c *component.FlatCall) error {
			b, _, err := flatOwned[*incomingBody](c, 0)
			if err != nil {
				return err
			}
			f, err := b.finish()
			if err != nil {
				return err
			}
			return c.SetOwn(f)
		})
	add(sigTypes+"[static]fields.from-list",
		"func(list<tuple<string, list<u8>>>) -> result<"+own(fieldsR)+", variant{invalid-syntax, forbidden, immutable}>",
		func(_ context.Context, c *component.FlatCall) error {
			cx := c.Context()
			if uint64(c.U32(1))*16 > cabi.MaxListByteLength {
				return fmt.Errorf("a list of %d fields", c.U32(1))
			}
			if c.U32(0)%4 != 0 {
				return fmt.Errorf("a list of fields at %d, not aligned to 4", c.U32(0))
			}
			entries, err := cx.ViewBytes(c.U32(0), c.U32(1)*16)
			if err != nil {
				return err
			}
			n := len(entries) / 16
			f := wctx(c.Inst).newFields()
			if n <= len(f.nameRoom) {
				f.names, f.values = f.nameRoom[:0], f.valueRoom[:0]
			} else {
				f.names, f.values = make([]string, 0, n), make([][]byte, 0, n)
			}
			// What the fields copy out of the guest, within the budget
			// lifting has (cabi.DefaultMaxLift): entries may all point at
			// one large value. The values are copied into one buffer.
			var valuesLen, namesLen int64
			for i := 0; i < len(entries); i += 16 {
				namesLen += int64(le32(entries[i+4:]))
				valuesLen += int64(le32(entries[i+12:]))
			}
			lifted := int64(len(entries)) + valuesLen // and the names, as they are lifted
			if lifted > cabi.DefaultMaxLift {
				return fmt.Errorf("fields of more than %d bytes", cabi.DefaultMaxLift)
			}
			// Held for the component: the values, each field's headers,
			// and the names (at most what the entries say).
			if err := wctx(c.Inst).hold(valuesLen + namesLen + int64(n)*fieldOverhead); err != nil {
				return err
			}
			buf := f.byteRoom[:0]
			if valuesLen > int64(len(f.byteRoom)) {
				buf = make([]byte, 0, valuesLen)
			}
			for i := 0; i < len(entries); i += 16 {
				e := entries[i:]
				name, err := liftName(cx, le32(e[0:]), le32(e[4:]))
				if err != nil {
					return err
				}
				value, err := cx.ViewBytes(le32(e[8:]), le32(e[12:]))
				if err != nil {
					return err
				}
				if lifted += int64(len(name)); lifted > cabi.DefaultMaxLift {
					return fmt.Errorf("fields of more than %d bytes", cabi.DefaultMaxLift)
				}
				start := len(buf)
				buf = append(buf, value...)
				f.names, f.values = append(f.names, name), append(f.values, buf[start:len(buf):len(buf)])
			}
			// Checked once all are lifted, as the HostFunc gets them: a
			// list that cannot be lifted traps before any field is judged.
			for i, name := range f.names {
				if e, good := checkField(name, f.values[i]); !good {
					return c.Set(e)
				}
			}
			return c.SetOwn(f)
		})
	add(sigTypes+"[constructor]outgoing-response", "func("+own(fieldsR)+") -> "+own(response),
		func(_ context.Context, c *component.FlatCall) error {
			h, rep, err := flatOwned[*fields](c, 0)
			if err != nil {
				return err
			}
			c.Inst.DropObject(rep) // the response owns the headers now
			return c.SetOwn(wctx(c.Inst).newResponse(h))
		})
	add(sigTypes+"[method]outgoing-response.body", "func("+borrow(response)+") -> result<"+own(outBody)+">",
		func(_ context.Context, c *component.FlatCall) error {
			r, err := flatObject[*OutgoingResponse](c, 0)
			if err != nil {
				return err
			}
			if b, got := r.takeBody(); got {
				return c.SetOwn(b)
			}
			return c.SetCase(1, nil)
		})
	add(sigTypes+"[method]outgoing-body.write", "func("+borrow(outBody)+") -> result<"+own(output)+">",
		func(_ context.Context, c *component.FlatCall) error {
			b, err := flatObject[*outgoingBody](c, 0)
			if err != nil {
				return err
			}
			if s, got := b.takeStream(); got {
				return c.SetOwn(s)
			}
			return c.SetCase(1, nil)
		})
	add(sigTypes+"[static]outgoing-body.finish",
		"func("+own(outBody)+", option<"+own(fieldsR)+">) -> result<_, "+errorCodeSig+">",
		func(ctx context.Context, c *component.FlatCall) error {
			b, _, err := flatOwned[*outgoingBody](c, 0)
			if err != nil {
				return err
			}
			var trailers *fields
			switch c.U32(1) {
			case 0:
			case 1:
				t, rep, err := flatOwned[*fields](c, 2)
				if err != nil {
					return err
				}
				c.Inst.DropObject(rep) // the body owns the trailers now
				trailers = t
			default:
				return fmt.Errorf("option case %d", c.U32(1))
			}
			if err := b.finish(ctx, trailers); err != nil {
				return err
			}
			return c.SetCase(0, nil)
		})
	add(sigTypes+"[static]response-outparam.set",
		"func("+own(outparam)+", result<"+own(response)+", "+errorCodeSig+">)",
		func(_ context.Context, c *component.FlatCall) error {
			o, _, err := flatOwned[*ResponseOutparam](c, 0)
			if err != nil {
				return err
			}
			switch c.U32(1) {
			case 0:
				r, _, err := flatOwned[*OutgoingResponse](c, 2)
				if err != nil {
					return err
				}
				return o.setResponse(r)
			case 1:
				// Lifted whole, as the HostFunc's argument is: a bad
				// payload traps.
				if _, err := c.Arg(1); err != nil {
					return err
				}
				return o.setError(c.U32(2))
			}
			return fmt.Errorf("result case %d", c.U32(1))
		})
	// wasi-libc's first getenv asks for the environment: in a reset
	// instance, once a request.
	add("wasi:cli/environment@0.2#get-environment", "func() -> list<tuple<string, string>>",
		func(_ context.Context, c *component.FlatCall) error {
			env := wctx(c.Inst).Env
			cx := c.Context()
			list, err := cx.Allocate(4, uint32(16*len(env)))
			if err != nil {
				return err
			}
			for i, kv := range env {
				for j, s := range kv {
					ptr, n, err := cx.LowerString(s)
					if err != nil {
						return err
					}
					at := list + uint32(16*i+8*j)
					if err := cx.StoreU32(at, ptr); err != nil {
						return err
					}
					if err := cx.StoreU32(at+4, n); err != nil {
						return err
					}
				}
			}
			out, _ := c.Out()
			if err := cx.StoreU32(out, list); err != nil {
				return err
			}
			return cx.StoreU32(out+4, uint32(len(env)))
		})
	add(sigStreams+"[method]input-stream.blocking-read",
		"func("+borrow(input)+", u64) -> result<list<u8>, "+streamErrSig+">", flatRead)
	add(sigStreams+"[method]input-stream.read",
		"func("+borrow(input)+", u64) -> result<list<u8>, "+streamErrSig+">", flatRead)
	add(sigStreams+"[method]output-stream.blocking-write-and-flush",
		"func("+borrow(output)+", list<u8>) -> result<_, "+streamErrSig+">", flatWrite)
	add(sigStreams+"[method]output-stream.write",
		"func("+borrow(output)+", list<u8>) -> result<_, "+streamErrSig+">", flatWrite)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func flatRead(_ context.Context, c *component.FlatCall) error {
	s, err := flatObject[*inputStream](c, 0)
	if err != nil {
		return err
	}
	b, rerr := s.read(c.U64(1))
	if rerr != nil {
		return c.Set(streamError(c.Inst, rerr))
	}
	ptr, m, err := c.Context().LowerBytes(b)
	if err != nil {
		return err
	}
	return c.SetCase(0, func(payload uint32) error {
		if err := c.Context().StoreU32(payload, ptr); err != nil {
			return err
		}
		return c.Context().StoreU32(payload+4, m)
	})
}

func flatWrite(_ context.Context, c *component.FlatCall) error {
	s, err := flatObject[*outputStream](c, 0)
	if err != nil {
		return err
	}
	b, err := c.Bytes(1)
	if err != nil {
		return err
	}
	if len(b) > cabi.DefaultMaxLift { // what lifting it would refuse
		return fmt.Errorf("a write of %d bytes, more than %d", len(b), cabi.DefaultMaxLift)
	}
	if _, err := s.w.Write(b); err != nil {
		return c.Set(streamError(c.Inst, err))
	}
	return c.SetCase(0, nil)
}

// liftName lifts a field's name, lowercased: a common one (commonNames)
// without allocating.
func liftName(cx *cabi.Context, ptr, units uint32) (string, error) {
	if cx.Encoding == cabi.UTF8 {
		b, err := cx.ViewBytes(ptr, units)
		if err != nil {
			return "", err
		}
		if name, ok := commonNames[string(b)]; ok {
			return name, nil
		}
	}
	name, err := cx.LiftString(ptr, units)
	return strings.ToLower(name), err
}
