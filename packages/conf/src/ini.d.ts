// The ini package ships no types; only the call we make is declared.
declare module 'ini' {
  export function decode(text: string, opt?: { bracketedArray?: boolean }): Record<string, unknown>;
}
