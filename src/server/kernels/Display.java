/* codepane Java kernel: rich output from a cell. The kernel puts its own jar on the
 * JShell class path and evaluates `import static codepane.kernel.Display.*;` at start, so
 * a cell can call html("<b>x</b>"), png(bytes), display(Map.of(...)) and the others
 * directly. JShell's local engine loads this class through the application class loader,
 * so it is the very class the kernel loaded, and the calls reach the kernel's event writer.
 *
 * Each call sends one `display` event (main:false) to the running cell. Used outside a
 * kernel, every method throws IllegalStateException. */
package codepane.kernel;

import java.util.LinkedHashMap;
import java.util.Map;

/** Rich output helpers for cells run by the codepane Java kernel. */
public final class Display {
    private Display() {}

    /** Show HTML (text/html). */
    public static void html(String html) {
        send("text/html", html);
    }

    /** Show an SVG document (image/svg+xml). */
    public static void svg(String svg) {
        send("image/svg+xml", svg);
    }

    /** Show a PNG image from its file bytes (image/png, sent as base64). */
    public static void png(byte[] png) {
        send("image/png", png);
    }

    /** Show Markdown text (text/markdown). */
    public static void markdown(String markdown) {
        send("text/markdown", markdown);
    }

    /** Show a JSON document (application/json); the text must be valid JSON. */
    public static void json(String json) {
        send("application/json", json);
    }

    /**
     * Show a MIME bundle, e.g. display(Map.of("text/plain", "hi", "text/html", "<i>hi</i>")).
     * String values are taken as they are and byte[] values as base64. Under
     * application/json and the Vega-Lite types a String is JSON text (validated and sent
     * as the JSON value it holds); a Map, List, Number, Boolean or null is sent as JSON.
     */
    public static void display(Map<String, Object> bundle) {
        if (bundle == null) throw new IllegalArgumentException("display: the bundle is null");
        Map<String, Object> data = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : bundle.entrySet()) {
            String mime = String.valueOf(e.getKey());
            data.put(mime, value(mime, e.getValue()));
        }
        emit(data);
    }

    private static void send(String mime, Object value) {
        if (value == null) throw new IllegalArgumentException(mime + ": the value is null");
        Map<String, Object> data = new LinkedHashMap<>();
        data.put(mime, value(mime, value));
        emit(data);
    }

    /** A bundle value in the form Json.write sends (README: JSON types are JSON values). */
    private static Object value(String mime, Object v) {
        if (isJsonType(mime) && v instanceof CharSequence) {
            try {
                return Json.parse(v.toString());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(mime + ": " + e.getMessage()); // a JDK class, not the kernel's
            }
        }
        if (isJsonType(mime)) return v;
        if (v == null || v instanceof CharSequence || v instanceof byte[]) return v;
        return v.toString();
    }

    private static boolean isJsonType(String mime) {
        return mime.equals("application/json")
                || (mime.startsWith("application/vnd.vegalite.") && mime.endsWith("+json"));
    }

    private static void emit(Map<String, Object> data) {
        Events ev = Events.current();
        if (ev == null) throw new IllegalStateException("display needs the codepane kernel");
        StringBuilder sb = new StringBuilder();
        Json.write(sb, data); // here, in the cell's thread: a bad value fails the cell, not the writer
        ev.display(sb.toString(), false);
    }
}
