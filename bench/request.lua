-- One fixed request for wrk, described on the command line (used by bench/run.js):
--   wrk ... -s bench/request.lua <url> -- <METHOD> <body or ""> [<header> <value>]...
-- Everything is set in init(), so wrk formats the request once and reuses it (as fast as no
-- script at all).
function init(args)
  wrk.method = args[1] or "GET"
  if args[2] ~= nil and args[2] ~= "" then
    wrk.body = args[2]
  end
  local i = 3
  while args[i] ~= nil do
    wrk.headers[args[i]] = args[i + 1]
    i = i + 2
  end
end
