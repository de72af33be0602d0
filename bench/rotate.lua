-- Requests over a list of task ids for wrk (used by bench/run.js for PATCH and DELETE):
--   wrk ... -s bench/rotate.lua <base url> -- <ids file> <path with {id}> <METHOD> <body or "">
--       [<header> <value>]...
-- Each request takes the next id of the file (one per line), so a DELETE never meets a task
-- already deleted, and writes spread over rows rather than queue on one row's lock.
local ids = {}
local next_id = 0
local template, method, body
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  template = args[2]
  method = args[3]
  if args[4] ~= nil and args[4] ~= "" then
    body = args[4]
  end
  local i = 5
  while args[i] ~= nil do
    headers[args[i]] = args[i + 1]
    i = i + 2
  end
end

function request()
  next_id = next_id % #ids + 1
  local path = template:gsub("{id}", ids[next_id])
  return wrk.format(method, path, headers, body)
end
