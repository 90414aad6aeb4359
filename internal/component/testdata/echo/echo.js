// Each export returns its argument: the value goes from the host into
// JavaScript and back through componentize-js's canonical ABI.
const id = (x) => x;
export const echoBool = id, echoS8 = id, echoU8 = id, echoS16 = id, echoU16 = id, echoS32 = id, echoU32 = id,
  echoS64 = id, echoU64 = id, echoF32 = id, echoF64 = id, echoChar = id, echoString = id, echoBytes = id,
  echoStrings = id, echoPoint = id, echoShape = id, echoColour = id, echoStyle = id, echoOption = id,
  echoTuple = id;
// A result is a value to return, or an error to throw.
export function echoResult(x) {
  if (x.tag === 'err') throw { payload: x.val };
  return x.val;
}
export function echoMany(...args) { return args; }
