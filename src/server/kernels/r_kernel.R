# codepane R kernel: one long-lived R process per session, running cell after cell in
# the global environment (protocol 1 of README.md in this folder).
#
# Started by codepane-server as `Rscript --vanilla /kernel/r_kernel.R` with fd 3 carrying
# requests and fd 4 taking events (both reopened through /proc/self/fd, which needs the
# pipes fchown'd to the sandbox uid), and fd 1/2 as raw pipes the server forwards.
#
# Engine: evaluate::evaluate() with an output handler, repr for representations and
# IRdisplay for display_*() calls, as IRkernel does. What each kind of output becomes:
#   text printed by R (cat, print, auto-printing inside loops) -> stream stdout
#   message()                                                   -> stream stderr
#   warning()     -> stream stderr, one block per warning as it happens, in the form of
#                    the one-shot runner: "Warning message:\nIn f() : msg\n" (or without
#                    the "In ... :" line part when the warning came from the top level)
#   an error      -> one `error` event: ename = class(e)[1], evalue = conditionMessage(e),
#                    traceback = "Error in <call> : msg" plus the user's calls, innermost
#                    first, numbered as R's traceback() does
#   a plot        -> display main:false {"image/png"}, one per top-level expression that
#                    changed the plot (repr::repr_png of the recorded plot)
#   a visible value -> display with the bundle of IRdisplay::prepare_mimebundle(); main:true
#                    for the value of the cell's last top-level expression, main:false for
#                    the values of earlier ones (R prints those too)
#   IRdisplay::display*() -> display main:false
# Writes to stderr() (cat(file = stderr())), system() and C code reach the raw fd 1/2.
#
# Limitations of evaluate 0.20 that the kernel keeps:
# - Output is captured through a sink and handed over when a top-level expression ends,
#   or earlier when it signals a message, warning, or plot. So `for (i in 1:3) { cat(i);
#   Sys.sleep(1) }` delivers its text after 3 s, not as it is written. The one cheap
#   remedy: this kernel masks flush.console() (on the search path, not in the global
#   environment) with evaluate's flush, so a loop that calls flush.console() streams.
# - Each cell plots on a fresh device: a cell cannot add to the previous cell's plot.
# - After an error evaluate 0.20 would run the rest of the error's source line and show
#   a stale value again; the kernel abandons the cell at the first error instead.
#
# Interrupts: SIGINT is the interrupt. The kernel runs with R's interrupts suspended and
# allows them only around the user's evaluation, so a SIGINT during a cell raises R's
# `interrupt` condition there (error Interrupted, done status interrupted, state kept),
# while a SIGINT that arrives idle (blocked reading fd 3) or while the kernel writes its
# own events stays pending and is drained, harmlessly, right after the next request line
# has been read: it never loses that request and never interrupts the next cell. Stale
# {"op":"interrupt"} lines are ignored: R cannot read fd 3 while it runs a cell.
#
# q() in a cell ends the kernel (the server then reports the state as lost). EOF on fd 3
# ends it with status 0.

suspendInterrupts(local({
  PROTOCOL <- 1L
  REQUEST_PATH <- "/proc/self/fd/3"
  EVENT_PATH <- "/proc/self/fd/4"
  STDOUT_PATH <- "/proc/self/fd/1"
  STDERR_PATH <- "/proc/self/fd/2"
  SYNC_PREFIX <- "\036codepane-sync "
  CODE_FILENAME <- "<code>"
  # What a value or display() is rendered as; image/png only for plot objects.
  MIMETYPES <- c("text/plain", "text/html", "text/markdown", "text/latex", "image/png")
  # Bundle entries that are JSON values, not strings (README "Events").
  JSON_MIME <- "^application/(.+\\+)?json$"
  # Loaded after `ready`, while the kernel waits for its first request (see below).
  PRELOAD <- c("repr", "IRdisplay", "base64enc")
  # The frame in which evaluate() runs the user's expression; calls above it are ours.
  EVAL_FRAME <- quote(eval(expr, envir, enclos))
  # The call a parse error of the cell names; as uninformative as EVAL_FRAME.
  PARSE_FRAME <- quote(parse(text = x, srcfile = src))
  # Calls that signal a condition; the traceback ends before the first of them.
  SIGNAL_FUNS <- c("stop", "warning", "signalCondition", ".handleSimpleError", "h",
                   ".signalSimpleWarning", "abort")

  # A connection on one of our fds, opened on first use and reopened if a cell closed it
  # (closeAllConnections() closes our own open of the fd, not the fd itself). Its number
  # may then belong to another connection; the conn_id pointer tells them apart.
  channel <- function(path, mode) {
    con <- NULL
    alive <- function() tryCatch(
      isOpen(con) && identical(attr(getConnection(con), "conn_id"), attr(con, "conn_id")),
      error = function(e) FALSE)
    function() {
      if (is.null(con) || !alive()) con <<- file(path, open = mode, raw = TRUE)
      con
    }
  }
  requests <- channel(REQUEST_PATH, "r")
  events <- channel(EVENT_PATH, "wb")
  # The sync markers go to fresh connections on fd 1/2, so that a sink() a cell left open
  # cannot swallow them; append mode, so that a log file on fd 1/2 is not truncated.
  sync_out <- channel(STDOUT_PATH, "ab")
  sync_err <- channel(STDERR_PATH, "ab")

  # Valid UTF-8 for the wire: one string, bad bytes replaced by U+FFFD.
  utf8 <- function(s) {
    s <- enc2utf8(paste(as.character(s), collapse = "\n"))
    if (!validUTF8(s)) s <- iconv(s, "UTF-8", "UTF-8", sub = "\uFFFD")
    s
  }

  # One event, one line on fd 4. Without interrupts, so a SIGINT cannot cut an event in
  # two; if fd 4 is gone the server is gone, and so is the kernel.
  emit <- function(ev) suspendInterrupts({
    line <- jsonlite::toJSON(ev, auto_unbox = TRUE, null = "null", digits = NA,
                             json_verbatim = TRUE)
    ok <- tryCatch({
      con <- events()
      writeLines(line, con, useBytes = TRUE)
      flush(con)
      TRUE
    }, error = function(e) FALSE)
    if (!ok) quit(save = "no", status = 1L, runLast = FALSE)
    invisible()
  })

  # The state of the cell that is running (NULL id while idle).
  cell <- new.env(parent = emptyenv())
  cell$id <- NULL
  count <- 0L

  # The run id as it came, written verbatim (JSON and marker), so big ids keep all digits.
  id_text <- function(id) {
    if (is.numeric(id) && length(id) == 1L && !is.na(id)) sprintf("%.0f", id) else "null"
  }
  stream <- function(name, text) {
    if (nzchar(text)) {
      emit(list(type = "stream", id = cell$json_id, name = name, text = utf8(text)))
    }
  }

  # A MIME bundle as a JSON object: strings, except the JSON types, which are inserted
  # as JSON when they are valid JSON text.
  bundle <- function(data) {
    out <- structure(list(), names = character())
    for (mime in names(data)) {
      v <- data[[mime]]
      if (is.null(v)) next
      if (is.raw(v)) v <- base64enc::base64encode(v)
      if (grepl(JSON_MIME, mime)) {
        if (!is.character(v)) v <- jsonlite::toJSON(v, auto_unbox = TRUE, null = "null")
        v <- utf8(v)
        out[[mime]] <- if (jsonlite::validate(v)) structure(v, class = "json") else v
      } else {
        out[[mime]] <- utf8(v)
      }
    }
    out
  }
  display <- function(data, main) {
    emit(list(type = "display", id = cell$json_id, data = bundle(data), main = main))
  }

  # The bundle of a visible value. A representation that fails is left out; if that is
  # text/plain, print() is called directly so that its error reaches the user.
  value_bundle <- function(v) {
    data <- IRdisplay::prepare_mimebundle(v, mimetypes = MIMETYPES,
                                          error_handler = function(e) NULL)$data
    if (is.null(data[["text/plain"]])) {
      data[["text/plain"]] <- paste(utils::capture.output(print(v)), collapse = "\n")
    }
    data
  }

  # The user's calls in sys.calls(): those after evaluate's eval() frame and before the
  # first call that signalled the condition (stop(), our handlers).
  user_calls <- function(calls) {
    top <- which(vapply(calls, identical, logical(1), EVAL_FRAME))
    if (length(top) == 0L) return(list())
    calls <- calls[-seq_len(min(top))]
    # eval() shows twice (the closure and its context); the user could call it too.
    while (length(calls) > 0L && identical(calls[[1L]], EVAL_FRAME)) calls <- calls[-1L]
    signal <- vapply(calls, function(cl) {
      fn <- cl[[1L]]
      is.name(fn) && as.character(fn) %in% SIGNAL_FUNS
    }, logical(1))
    if (any(signal)) calls <- calls[seq_len(min(which(signal)) - 1L)]
    calls
  }
  one_line <- function(call) paste(deparse(call, nlines = 1L), collapse = "")
  is_ours <- function(call) identical(call, EVAL_FRAME) || identical(call, PARSE_FRAME)
  condition_head <- function(kind, cond) {
    call <- conditionCall(cond)
    if (is.null(call) || is_ours(call)) {
      paste0(kind, ": ", conditionMessage(cond))
    } else {
      paste0(kind, " in ", one_line(call), " : ", conditionMessage(cond))
    }
  }
  error_info <- function(e, calls = list()) {
    tb <- condition_head("Error", e)
    if (length(calls) > 0L) {
      n <- length(calls)
      lines <- vapply(rev(seq_len(n)), function(i) paste0(i, ": ", one_line(calls[[i]])),
                      character(1))
      tb <- paste(c(tb, "Traceback:", lines), collapse = "\n")
    }
    list(ename = class(e)[1L], evalue = conditionMessage(e), traceback = tb)
  }
  warning_text <- function(w) {
    call <- conditionCall(w)
    if (is.null(call) || is_ours(call)) {
      paste0("Warning message:\n", conditionMessage(w), "\n")
    } else {
      paste0("Warning message:\nIn ", one_line(call), " : ", conditionMessage(w), "\n")
    }
  }

  # The output handler of one cell. evaluate calls `value` once per top-level expression
  # (visible or not, because it takes two arguments), which both numbers the expressions
  # and is the first point after an error's expression has ended and its plot has been
  # captured: there the cell is abandoned.
  handler <- evaluate::new_output_handler(
    text = function(text) stream("stdout", text),
    message = function(m) stream("stderr", conditionMessage(m)),
    warning = function(w) stream("stderr", warning_text(w)),
    error = function(e) {
      if (is.null(cell$error)) cell$error <- error_info(e, user_calls(sys.calls()))
    },
    graphics = function(plot) {
      png <- tryCatch(repr::repr_png(plot), error = function(e) e)
      if (inherits(png, "error")) {
        stream("stderr", paste0("Error rendering plot: ", conditionMessage(png), "\n"))
      } else if (length(png) > 0L) {
        display(list("image/png" = png), main = FALSE)
      }
    },
    value = function(v, visible) {
      if (!is.null(cell$error)) invokeRestart("codepane_abandon")
      cell$values <- cell$values + 1L
      if (visible) {
        data <- tryCatch(value_bundle(v), error = function(e) e)
        if (inherits(data, "error")) {
          cell$error <- error_info(data)
          invokeRestart("codepane_abandon")
        }
        display(data, main = identical(cell$values, cell$exprs))
      }
      invisible()
    },
    # Text written before a SIGINT is handed over before the interrupt unwinds.
    calling_handlers = list(interrupt = function(i) evaluate::flush_console())
  )

  # Runs one cell and reports it; the only place where interrupts are allowed (besides
  # drain_interrupts()).
  run_cell <- function(id, code) {
    count <<- count + 1L
    cell$id <- id
    cell$json_id <- structure(id_text(id), class = "json")
    cell$error <- NULL
    cell$values <- 0L
    exprs <- tryCatch(parse(text = code, keep.source = FALSE), error = function(e) NULL)
    cell$exprs <- length(exprs)
    status <- tryCatch(allowInterrupts({
      withRestarts(
        tryCatch(
          evaluate::evaluate(code, envir = globalenv(), output_handler = handler,
                             stop_on_error = 1L, new_device = TRUE,
                             filename = CODE_FILENAME),
          # Not the user's errors (evaluate catches those) but a failure of evaluate or
          # of this handler itself; still an error of the cell.
          error = function(e) {
            if (is.null(cell$error)) cell$error <- error_info(e)
          }),
        codepane_abandon = function() NULL)
      if (is.null(cell$error)) "ok" else "error"
    }), interrupt = function(i) "interrupted")
    if (status == "interrupted") {
      emit(list(type = "error", id = cell$json_id, ename = "Interrupted",
                evalue = "interrupted", traceback = "Interrupted"))
    } else if (status == "error") {
      emit(c(list(type = "error", id = cell$json_id), lapply(cell$error, utf8)))
    }
    finish(status)
  }

  # Sinks a cell left open: evaluate captures output with a sink of its own on the same
  # stack, and pops the wrong one when the user's is on top, leaving R's output on a
  # closed connection. So every cell starts with none (a sink does not outlive its cell);
  # sink() pops even when it fails.
  reset_sinks <- function() {
    for (i in seq_len(sink.number())) try(sink(), silent = TRUE)
    if (sink.number(type = "message") != 2L) try(sink(type = "message"), silent = TRUE)
  }

  # Flush what R buffers on fd 1/2 (connections 1 and 2 are those fds, whatever sinks
  # say), write the sync markers, then `done`.
  finish <- function(status) {
    reset_sinks()
    try(flush(getConnection(1L)), silent = TRUE)
    try(flush(getConnection(2L)), silent = TRUE)
    marker <- paste0(SYNC_PREFIX, id_text(cell$id), "\n")
    for (con in list(sync_out, sync_err)) {
      tryCatch({
        fd <- con()
        writeChar(marker, fd, eos = NULL, useBytes = TRUE)
        flush(fd)
      }, error = function(e) NULL)
    }
    emit(list(type = "done", id = cell$json_id, status = status, count = count))
    cell$id <- NULL
  }

  # A SIGINT that arrived while interrupts were suspended is pending; let it fire here,
  # where it does nothing. Sys.sleep(0) checks for interrupts.
  drain_interrupts <- function() {
    tryCatch(allowInterrupts(Sys.sleep(0)), interrupt = function(i) NULL)
  }

  options(
    jupyter.display_mimetypes = MIMETYPES,
    jupyter.base_display_func = function(data, metadata = NULL) {
      if (is.null(cell$id)) return(invisible())
      evaluate::flush_console()
      display(data, main = FALSE)
    },
    device = grDevices::pdf  # evaluate then opens pdf(NULL): no Rplots.pdf
  )
  attach(list(flush.console = function() evaluate::flush_console()),
         name = "codepane:kernel", warn.conflicts = FALSE)

  emit(list(type = "ready", protocol = PROTOCOL, language = "r"))
  # repr (with its tidyverse imports) is most of the start-up time, and nearly every
  # cell needs it; so does the first pass through evaluate and prepare_mimebundle, which
  # costs ~30 ms once. Doing both after `ready` costs a cell sent at once the same wait,
  # and a kernel that waits in the server's pool nothing.
  tryCatch({
    for (pkg in PRELOAD) loadNamespace(pkg)
    warm <- evaluate::new_output_handler(value = function(v, visible) {
      IRdisplay::prepare_mimebundle(v, mimetypes = MIMETYPES)
    })
    evaluate::evaluate("1", envir = new.env(), output_handler = warm)
  }, error = function(e) NULL)

  repeat {
    line <- tryCatch(readLines(requests(), n = 1L, warn = FALSE, encoding = "UTF-8"),
                     error = function(e) character())
    if (length(line) == 0L) break
    drain_interrupts()
    req <- tryCatch(jsonlite::parse_json(line), error = function(e) NULL)
    if (!is.list(req) || !identical(req$op, "exec")) next
    code <- if (is.character(req$code)) req$code else ""
    # A failure of the kernel's own code still ends the cell, so the server never waits
    # for a `done` that will not come.
    tryCatch(run_cell(req$id, code), error = function(e) {
      if (!is.null(cell$id)) {
        emit(list(type = "error", id = cell$json_id, ename = "KernelError",
                  evalue = utf8(conditionMessage(e)), traceback = utf8(condition_head("Error", e))))
        finish("error")
      }
    })
  }
  quit(save = "no", status = 0L, runLast = FALSE)
}))
