// codepane client: the C → JS hooks of client.c, as an Emscripten --js-library. Each hook
// copies what C lends it (strings are decoded from HEAPU8 by byte length, so NUL bytes in
// program output survive) and hands it to the handler the JS API passed to the module
// factory, keyed by the id the JS API allocated. Handlers never call back into C from
// here: the JS API defers user-visible work to a microtask.
//
// Module properties are quoted so Closure keeps their names.
mergeInto(LibraryManager.library, {
  $cpText: function (ptr, len) {
    return ptr ? new TextDecoder().decode(HEAPU8.subarray(ptr, ptr + len)) : null;
  },

  cp_js_run_done__deps: ['$cpText'],
  cp_js_run_done__sig: 'viii',
  cp_js_run_done: function (runId, ptr, len) {
    Module['onRunDone'](runId, cpText(ptr, len));
  },

  cp_js_stream__deps: ['$cpText'],
  cp_js_stream__sig: 'viiiiii',
  cp_js_stream: function (connId, kind, inv, ptr, len, extra) {
    Module['onStream'](connId, kind, UTF8ToString(inv), cpText(ptr, len), extra);
  },

  cp_js_conn_state__sig: 'vii',
  cp_js_conn_state: function (connId, state) {
    Module['onConnState'](connId, state);
  },

  cp_js_timer__sig: 'vii',
  cp_js_timer: function (connId, ms) {
    Module['onTimer'](connId, ms);
  },

  cp_js_random__sig: 'd',
  cp_js_random: function () {
    return Math.random();
  },

  // cJSON's number conversions (cjson_numbers.c). String(d) is the shortest text that
  // reads back as d; the caller has ruled out NaN and the infinities.
  cp_js_format_double__sig: 'idii',
  cp_js_format_double: function (d, buf, cap) {
    var s = String(d);
    stringToUTF8(s, buf, cap);
    return s.length;
  },

  // strtod over the longest prefix that is a decimal number; *end = s when there is none.
  cp_js_strtod__sig: 'dii',
  cp_js_strtod: function (s, end) {
    var m = /^[ \t\n\r]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?/.exec(UTF8ToString(s));
    HEAP32[end >> 2] = m ? s + m[0].length : s;
    return m ? Number(m[0]) : 0;
  },

  // Emscripten 3.1.6: emscripten_fetch_close on an in-flight fetch never aborts the XHR,
  // whose late onload then writes into freed memory. Detach its handlers and abort it
  // before the close (ids are 1-based indexes into Fetch.xhrs).
  cp_js_xhr_detach_abort__deps: ['$Fetch'],
  cp_js_xhr_detach_abort__sig: 'vi',
  cp_js_xhr_detach_abort: function (fetchId) {
    var x = Fetch.xhrs[fetchId - 1];
    if (x) {
      x.onload = x.onerror = x.ontimeout = x.onprogress = x.onreadystatechange = null;
      x.abort();
    }
  },

  // Emscripten 3.1.6: emscripten_websocket_delete deletes by the wrong key, so the socket
  // object stays referenced for ever. Drop it by its id.
  cp_js_ws_forget__deps: ['$WS'],
  cp_js_ws_forget__sig: 'vi',
  cp_js_ws_forget: function (id) {
    delete WS.sockets[id];
  },
});
