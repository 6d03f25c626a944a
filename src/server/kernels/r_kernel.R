# codepane R kernel: one long-lived R process per session, running cell after cell in
# the global environment (protocol 1 of README.md in this folder).
#
# Started by codepane-server as `Rscript --vanilla /kernel/r_kernel.R` with fd 3 carrying
# requests and fd 4 taking events (both reopened through /proc/self/fd, which needs the
# pipes fchown'd to the sandbox uid), and fd 1/2 as raw pipes the server forwards.
#
# Engine: the kernel parses a cell (keep.source) and evaluates its top-level expressions
# one by one in the global environment, as Rscript does, with repr for representations and
# IRdisplay for display_*() calls, as IRkernel does. What each kind of output becomes:
#   text printed by R (cat, print, auto-printing inside loops) -> fd 1, written through
#                    as it happens (R flushes its stdout after each write), so it streams
#                    live and what a cell printed survives the kernel being killed
#   message()     -> fd 2 (stderr()), as it happens
#   warning()     -> fd 2, one block per warning as it happens, in the form of the
#                    one-shot runner: "Warning message:\nIn f() : msg\n" (or without the
#                    "In ... :" part when the warning came from the top level)
#   an error      -> one `error` event: ename = class(e)[1], evalue = conditionMessage(e),
#                    traceback = "Error in <call> : msg" plus the user's calls, innermost
#                    first, numbered as R's traceback() does; the cell stops there
#   a plot        -> display main:false {"image/png"}, one per top-level expression that
#                    changed the plot (repr::repr_png of the recorded plot)
#   a visible value -> display with the bundle of IRdisplay::prepare_mimebundle(); main:true
#                    for the value of the cell's last top-level expression, main:false for
#                    the values of earlier ones (R prints those too)
#   IRdisplay::display*() -> display main:false
# The kernel sends no `stream` events: all text is on the raw fd 1/2, which the server
# forwards as the running cell's output (the sync markers before `done` fence it). Text
# on fd 1/2 and events on fd 4 are separate pipes, so their relative order (a cat() before
# a display) is not kept.
#
# Each cell plots on a fresh pdf(NULL) device: a cell cannot add to the previous cell's
# plot. Whether a plot changed follows evaluate's rules (its internal helpers).
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
  # The frame in which run_expr() runs the user's expression; calls above it are ours.
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

  # The user's calls in sys.calls(): those after run_expr()'s eval() frame and before the
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

  # The plot of the current device when it changed since the last one shown, else NULL
  # (evaluate's rules: a change of par() alone or an empty page is no plot).
  is_par_change <- function(p1, p2) get("is_par_change", asNamespace("evaluate"))(p1, p2)
  is_empty <- function(p) get("is.empty", asNamespace("evaluate"))(p)
  plot_snapshot <- function() {
    if (is.null(cell$id) || length(cell$devices) == 0L || grDevices::dev.cur() == 1L) return(NULL)
    plot <- tryCatch(grDevices::recordPlot(), error = function(e) NULL)
    if (is.null(plot) || identical(cell$last_plot, plot) ||
        isTRUE(tryCatch(is_par_change(cell$last_plot, plot), error = function(e) FALSE)) ||
        isTRUE(tryCatch(is_empty(plot), error = function(e) FALSE))) return(NULL)
    cell$last_plot <- plot
    plot
  }
  show_plot <- function() {
    plot <- plot_snapshot()
    if (is.null(plot)) return(invisible())
    dev <- grDevices::dev.cur()
    png <- tryCatch(repr::repr_png(plot), error = function(e) e)
    if (dev %in% grDevices::dev.list()) grDevices::dev.set(dev)
    if (inherits(png, "error")) {
      err_text(paste0("Error rendering plot: ", conditionMessage(png), "\n"))
    } else if (length(png) > 0L) {
      display(list("image/png" = png), main = FALSE)
    }
    invisible()
  }
  # Messages and warnings go to stderr() (fd 2, or the user's message sink) as they happen.
  err_text <- function(text) {
    flush_out()
    try(cat(text, file = stderr(), sep = ""), silent = TRUE)
  }
  flush_out <- function() try(flush(stdout()), silent = TRUE)

  # One top-level expression, evaluated as Rscript would, its printed output going straight
  # to fd 1 (R writes it through as it happens, so it streams and survives a kill). The
  # names expr, envir and enclos make the eval() frames the EVAL_FRAME that user_calls()
  # and condition_head() recognise as ours. Returns FALSE when the cell is to stop.
  run_expr <- function(expr, last) {
    envir <- globalenv()
    enclos <- baseenv()
    res <- tryCatch(
      withCallingHandlers(
        withVisible(eval(expr, envir, enclos)),
        message = function(m) {
          err_text(conditionMessage(m))
          tryInvokeRestart("muffleMessage")
        },
        warning = function(w) {
          # options(warn = 2) makes it an error (after this handler), warn < 0 hides it.
          if (getOption("warn", 0) >= 0 && getOption("warn", 0) < 2) {
            err_text(warning_text(w))
            tryInvokeRestart("muffleWarning")
          }
        },
        error = function(e) {
          if (is.null(cell$error)) cell$error <- error_info(e, user_calls(sys.calls()))
        }),
      error = function(e) {
        if (is.null(cell$error)) cell$error <- error_info(e)
        NULL
      })
    flush_out()
    show_plot()
    if (!is.null(cell$error)) return(FALSE)
    if (isTRUE(res$visible)) {
      data <- tryCatch(value_bundle(res$value), error = function(e) e)
      if (inherits(data, "error")) {
        cell$error <- error_info(data)
        return(FALSE)
      }
      display(data, main = last)
    }
    TRUE
  }

  # The cell's expressions, or NULL after recording a parse error. x and src are the names
  # of PARSE_FRAME, so the error names no call.
  parse_cell <- function(code) {
    # CRLF line ends, as Rscript reads a file with them (parse() on text does not).
    x <- gsub("\r\n", "\n", code, fixed = TRUE)
    src <- srcfilecopy(CODE_FILENAME, x)
    tryCatch(parse(text = x, srcfile = src, keep.source = TRUE), error = function(e) {
      cell$error <- error_info(e)
      NULL
    })
  }

  # Runs one cell and reports it; the only place where interrupts are allowed (besides
  # drain_interrupts()). Each cell plots on a fresh pdf(NULL) device of its own.
  run_cell <- function(id, code) {
    count <<- count + 1L
    cell$id <- id
    cell$json_id <- structure(id_text(id), class = "json")
    cell$error <- NULL
    cell$last_plot <- NULL
    cell$devices <- integer()
    status <- tryCatch(allowInterrupts({
      exprs <- parse_cell(code)
      if (is.null(cell$error) && length(exprs) > 0L) {
        new_device()
        cell$last_plot <- grDevices::recordPlot()
        n <- length(exprs)
        for (i in seq_len(n)) if (!run_expr(exprs[[i]], i == n)) break
      }
      if (is.null(cell$error)) "ok" else "error"
    }), interrupt = function(i) "interrupted")
    close_device()
    if (status == "interrupted") {
      emit(list(type = "error", id = cell$json_id, ename = "Interrupted",
                evalue = "interrupted", traceback = "Interrupted"))
    } else if (status == "error") {
      emit(c(list(type = "error", id = cell$json_id), lapply(cell$error, utf8)))
    }
    finish(status)
  }
  # A pdf(NULL) device (no file) recording its display list; it is closed when the cell
  # ends. Also R's default device while a cell runs, so a plot after dev.off() is seen.
  new_device <- function(...) {
    grDevices::pdf(NULL)
    grDevices::dev.control(displaylist = "enable")
    if (!is.null(cell$id)) cell$devices <- c(cell$devices, grDevices::dev.cur())
    invisible()
  }
  close_device <- function() {
    devs <- cell$devices
    cell$devices <- integer()
    cell$last_plot <- NULL
    for (dev in devs) {
      if (dev %in% grDevices::dev.list()) try(grDevices::dev.off(dev), silent = TRUE)
    }
  }
  # A new page ends the previous one: show it (a loop of plots gives one PNG per plot).
  new_page <- function(...) {
    if (!is.null(cell$id)) try(show_plot(), silent = TRUE)
  }

  # Sinks a cell left open are closed when it ends: a sink does not outlive its cell, so
  # that the next cell's output reaches fd 1/2 and the sync markers follow it there;
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
      flush_out()
      display(data, main = FALSE)
    },
    device = new_device  # no Rplots.pdf
  )
  setHook("before.plot.new", new_page)
  setHook("before.grid.newpage", new_page)

  emit(list(type = "ready", protocol = PROTOCOL, language = "r"))
  # repr (with its tidyverse imports) is most of the start-up time, and nearly every
  # cell needs it; so does the first pass through prepare_mimebundle and a plot, which
  # costs ~30 ms once. Doing both after `ready` costs a cell sent at once the same wait,
  # and a kernel that waits in the server's pool nothing.
  tryCatch({
    for (pkg in PRELOAD) loadNamespace(pkg)
    loadNamespace("evaluate")
    IRdisplay::prepare_mimebundle(1, mimetypes = MIMETYPES)
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
