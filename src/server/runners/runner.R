# codepane R runner: runs one snippet inside the sandbox.
#
# Started by codepane-server as `Rscript --vanilla /<runners>/runner.R [code-path]`; the
# code path defaults to /w/main.R. The snippet is parsed and its top-level expressions are
# evaluated one by one in the global environment, auto-printing visible values as Rscript
# does (print, or show for S4 objects). stdout is flushed after each expression (Rscript
# also writes each cat/print through to the pipe as it happens). Warnings are printed to
# stderr as they occur. Events go to fd 3 as JSON lines (opened through /proc/self/fd/3,
# which needs the pipe fchown'd to the sandbox uid):
#
#   {"type":"error","name":"simpleError","value":"x","traceback":"Error in f() : x\n..."}
#
# The first error (also a parse error) stops the run with exit status 1.

local({
  default_code_path <- "/w/main.R"
  event_path <- "/proc/self/fd/3"

  args <- commandArgs(trailingOnly = TRUE)
  code_path <- if (length(args) >= 1L) args[[1L]] else default_code_path

  events <- if (file.exists(event_path)) {
    tryCatch(file(event_path, open = "w", raw = TRUE), error = function(e) NULL)
  } else NULL

  json_str <- function(s) {
    s <- enc2utf8(paste(as.character(s), collapse = "\n"))
    s <- gsub("\\", "\\\\", s, fixed = TRUE)
    s <- gsub("\"", "\\\"", s, fixed = TRUE)
    s <- gsub("\n", "\\n", s, fixed = TRUE)
    s <- gsub("\r", "\\r", s, fixed = TRUE)
    s <- gsub("\t", "\\t", s, fixed = TRUE)
    for (i in c(1:8, 11:12, 14:31, 127)) {
      ch <- intToUtf8(i)
      if (grepl(ch, s, fixed = TRUE)) s <- gsub(ch, sprintf("\\u%04x", i), s, fixed = TRUE)
    }
    paste0("\"", s, "\"")
  }

  emit_error <- function(name, value, traceback) {
    flush(stdout())
    flush(stderr())
    if (is.null(events)) return(invisible())
    line <- paste0("{\"type\":\"error\",\"name\":", json_str(name), ",\"value\":",
                   json_str(value), ",\"traceback\":", json_str(traceback), "}")
    tryCatch({
      writeLines(line, events, useBytes = TRUE)
      flush(events)
    }, error = function(e) NULL)
    invisible()
  }

  # The calls that led to the condition, without this runner's own frames: everything
  # up to and including our eval(), and the handler frames after the signalling call.
  user_calls <- function(calls) {
    is_ours <- vapply(calls, function(cl) {
      identical(cl, quote(eval(expr, envir = globalenv())))
    }, logical(1))
    start <- if (any(is_ours)) max(which(is_ours)) + 1L else 1L
    calls <- if (start <= length(calls)) calls[start:length(calls)] else list()
    signal <- vapply(calls, function(cl) {
      fn <- cl[[1L]]
      is.name(fn) && as.character(fn) %in% c("stop", "warning", "signalCondition",
                                            ".handleSimpleError", "h", ".signalSimpleWarning")
    }, logical(1))
    if (any(signal)) calls <- calls[seq_len(min(which(signal)) - 1L)]
    calls
  }

  format_traceback <- function(cond, calls) {
    call <- conditionCall(cond)
    msg <- conditionMessage(cond)
    head <- if (is.null(call) || identical(call, quote(eval(expr, envir = globalenv())))) {
      paste0("Error: ", msg)
    } else {
      paste0("Error in ", paste(deparse(call, nlines = 1L), collapse = ""), " : ", msg)
    }
    if (length(calls) == 0L) return(head)
    lines <- vapply(seq_along(calls), function(i) {
      paste0(length(calls) - i + 1L, ": ", paste(deparse(calls[[i]], nlines = 1L), collapse = ""))
    }, character(1))
    paste(c(head, "Traceback:", rev(lines)), collapse = "\n")
  }

  show_warning <- function(w) {
    call <- conditionCall(w)
    text <- if (is.null(call) || identical(call, quote(eval(expr, envir = globalenv())))) {
      paste0("Warning message:\n", conditionMessage(w), "\n")
    } else {
      paste0("Warning message:\nIn ", paste(deparse(call, nlines = 1L), collapse = ""), " : ",
             conditionMessage(w), "\n")
    }
    flush(stdout())
    cat(text, file = stderr())
  }

  # Parse from text, so messages name "<code>:2:0" (after the rename below) and not the
  # path the sandbox happens to use; keep.source off, so printed functions deparse.
  lines <- readLines(code_path, encoding = "UTF-8", warn = FALSE)
  exprs <- tryCatch(parse(text = lines, keep.source = FALSE, encoding = "UTF-8"),
                    error = function(e) e)
  if (inherits(exprs, "error")) {
    msg <- sub("^<text>:", "<code>:", conditionMessage(exprs))
    emit_error(class(exprs)[1L], msg, paste0("Error: ", msg))
    quit(save = "no", status = 1L, runLast = FALSE)
  }

  failed <- FALSE
  for (expr in exprs) {
    captured <- NULL
    outcome <- tryCatch(
      withCallingHandlers({
        res <- withVisible(eval(expr, envir = globalenv()))
        if (res$visible) {
          if (isS4(res$value)) methods::show(res$value) else print(res$value)
        }
        NULL
      },
      error = function(e) {
        captured <<- user_calls(sys.calls())
      },
      warning = function(w) {
        show_warning(w)
        invokeRestart("muffleWarning")
      }),
      error = function(e) e,
      interrupt = function(i) simpleCondition("interrupted", call = NULL)
    )
    flush(stdout())
    if (!is.null(outcome)) {
      name <- if (inherits(outcome, "interrupt") || identical(class(outcome), c("simpleCondition", "condition")))
        "interrupt" else class(outcome)[1L]
      tb <- format_traceback(outcome, if (is.null(captured)) list() else captured)
      emit_error(name, conditionMessage(outcome), tb)
      failed <- TRUE
      break
    }
  }
  flush(stdout())
  if (!is.null(events)) close(events)
  quit(save = "no", status = if (failed) 1L else 0L, runLast = FALSE)
})
