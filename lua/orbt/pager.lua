-- orbt.pager: lazy pagination, in pure Lua, for every page operation of the
-- core's operation table.
--
-- For list_customers the pair is client:customer_pages(opts), one page
-- table at a time, and client:customers(opts), one consumer at a time; an
-- operation with path parameters takes them first (client:wallets(id,
-- opts)). Options: `page` (first page, default 0), `size` (1..50, default
-- 50: fewest requests), `limit` (stop after that many items), and
-- `max_retries` and `deadline` for each page's call. Pages are fetched one
-- at a time, only when needed. The walk ends on hasNext == false or an empty
-- page. A failed request is raised as the error object itself (like
-- io.lines), never turned into a quiet stop.

local error = error
local tostring = tostring
local type = type
local pairs = pairs
local floor = math.floor
local huge = math.huge
local unpack = table.unpack or unpack -- luacheck: ignore 143 (Lua 5.1's global)

local M = {}

local DEFAULT_SIZE = 50
local MAX_SIZE = 50
local KNOWN_OPTIONS = {
  page = true, size = true, limit = true, max_retries = true, deadline = true,
}

-- Set by install: gives a table of fields the core's error metatable.
local make_error = function(fields) return fields end

-- Bad options are raised as an error object before any request, since a
-- `for` loop has no place to receive `nil, err`.
local function invalid(op, field, message)
  return make_error({
    kind = "invalid", field = field, message = message, retryable = false,
    method = op.method, path = op.path,
  })
end

local function is_integer(v)
  return type(v) == "number" and v == floor(v) and v > -huge and v < huge
end

local function read_options(op, opts)
  if opts == nil then
    return 0, DEFAULT_SIZE, nil, nil
  end
  if type(opts) ~= "table" then
    error(invalid(op, "options", "options must be a table"), 4)
  end
  for key in pairs(opts) do
    if not KNOWN_OPTIONS[key] then
      error(invalid(op, tostring(key), "unknown field '" .. tostring(key) .. "'"), 4)
    end
  end
  local page, size, limit = opts.page or 0, opts.size or DEFAULT_SIZE, opts.limit
  if not is_integer(page) or page < 0 then
    error(invalid(op, "page", "page must be an integer >= 0"), 4)
  end
  if not is_integer(size) or size < 1 or size > MAX_SIZE then
    error(invalid(op, "size", "size must be an integer from 1 to " .. MAX_SIZE), 4)
  end
  if limit ~= nil and (not is_integer(limit) or limit < 0) then
    error(invalid(op, "limit", "limit must be an integer >= 0"), 4)
  end
  -- Retry limits go to each page's call, where the core checks them.
  local limits
  if opts.max_retries ~= nil or opts.deadline ~= nil then
    limits = { max_retries = opts.max_retries, deadline = opts.deadline }
  end
  return page, size, limit, limits
end

-- The iterator over pages of op: the arguments are op's path parameters,
-- then the options. The last page is cut so that no more than `limit`
-- items are seen in all.
local function pages_of(op)
  local nparams = #op.params
  local name = op.name
  return function(client, ...)
    local args = { ... }
    local page, size, limit, limits = read_options(op, args[nparams + 1])
    local remaining = limit
    local done = remaining == 0
    return function()
      if done then
        return nil
      end
      args[nparams + 1] = { page = page, size = size }
      args[nparams + 2] = limits
      local result, err = client[name](client, unpack(args, 1, nparams + 2))
      if not result then
        done = true
        error(err, 2)
      end
      local content = result.content
      local count = #content
      if remaining and count >= remaining then
        for i = count, remaining + 1, -1 do
          content[i] = nil
        end
        count = remaining
        done = true
      end
      if remaining then
        remaining = remaining - count
      end
      if count == 0 then
        done = true
        return nil
      end
      if result.hasNext ~= true then
        done = true
      end
      page = page + 1
      return result
    end
  end
end

-- The iterator over items, fetching the next page only when the current
-- one is used up.
local function items_of(pages_iterator)
  return function(client, ...)
    local pages = pages_iterator(client, ...)
    local content, index = nil, 0
    return function()
      while content == nil or index >= #content do
        content, index = nil, 0
        local next_page = pages()
        if next_page == nil then
          return nil
        end
        content = next_page.content
      end
      index = index + 1
      return content[index]
    end
  end
end

-- Called by luaopen_orbt with the client's method table, the core's error
-- constructor and the operation rows.
function M.install(methods, error_constructor, operations)
  make_error = error_constructor
  for _, op in ipairs(operations) do
    if op.answer == "page" and op.pages then
      local pages = pages_of(op)
      methods[op.pages] = pages
      if op.items then
        methods[op.items] = items_of(pages)
      end
    end
  end
end

return M
