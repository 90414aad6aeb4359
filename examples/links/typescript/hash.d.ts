// The TypeScript side of the import example:crypto/hash@0.1.0 (../wit/crypto.wit):
// componentize-js gives a component's imports to JavaScript as the module
// named by the interface, list<u8> as a Uint8Array and string as a string.
declare module 'example:crypto/hash@0.1.0' {
  /** The SHA-256 digest of data (32 bytes). */
  export function sha256(data: Uint8Array): Uint8Array;
  /** data as lowercase hexadecimal. */
  export function hex(data: Uint8Array): string;
}
