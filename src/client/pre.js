// codepane client (--pre-js, inside the module factory): the transports the module uses.
// Browsers have both as globals; the Node entry passes implementations in (npm `xhr2`,
// and npm `ws` with the session token as a header), so nothing is set on Node's globals.
// These vars shadow the globals inside the factory only; Closure sees them at its top
// level, beside its externs of the same names, hence the suppressions.
/** @suppress {duplicate} */
var XMLHttpRequest = Module['XMLHttpRequest'] || globalThis.XMLHttpRequest;
/** @suppress {duplicate} */
var WebSocket = Module['WebSocket'] || globalThis.WebSocket;
