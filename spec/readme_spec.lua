-- readme_spec.lua: every fenced lua, sh and nginx block of README.md and
-- docs/*.md runs, and prints what it says it prints. The conventions are in
-- docs/development.md ("The documentation is tested"); support/readme.lua
-- reads and runs the blocks.
local readme = require("support.readme")

local documents = readme.documents()
local all, problems, skipped = {}, {}, {}
for _, path in ipairs(documents) do
  local blocks, found = readme.blocks(path)
  for _, block in ipairs(blocks) do
    if readme.RUN[block.lang] then
      all[#all + 1] = block
      if block.skip then
        skipped[#skipped + 1] = block
      end
    end
  end
  for _, problem in ipairs(found) do
    problems[#problems + 1] = problem
  end
end

-- An nginx block is run with the sh block that follows it in the same
-- document, which talks to it. Returns the plan: a list of {block} and
-- {nginx = block, sh = block}.
local function plan()
  local steps = {}
  local i = 1
  while i <= #all do
    local block = all[i]
    if not block.skip then
      if block.lang == "nginx" then
        local after = all[i + 1]
        local pair = { nginx = block }
        if after and after.file == block.file and after.lang == "sh" and not after.skip then
          pair.sh = after
          i = i + 1
        end
        steps[#steps + 1] = pair
      else
        steps[#steps + 1] = { block = block }
      end
    end
    i = i + 1
  end
  return steps
end

describe("the documentation's blocks", function()
  local ran, runnable = 0, 0

  teardown(function()
    local lines = { ("README.md and docs/*.md: %d blocks run, %d skipped by a not-run marker, %d not run on "
      .. "this runtime (nginx blocks need LuaJIT)"):format(ran, #skipped, runnable - ran) }
    for _, block in ipairs(skipped) do
      lines[#lines + 1] = ("  not run: %s:%d (%s): %s"):format(block.file, block.line, block.lang, block.skip)
    end
    io.stdout:write("\n", table.concat(lines, "\n"), "\n")
  end)

  it("are well formed: markers right before the blocks they skip, every fence closed", function()
    assert(#problems == 0, table.concat(problems, "\n"))
  end)

  it(("skip at most %d blocks"):format(readme.MAX_SKIPPED), function()
    local names = {}
    for _, block in ipairs(skipped) do
      names[#names + 1] = ("%s:%d: %s"):format(block.file, block.line, block.skip)
    end
    assert(#skipped <= readme.MAX_SKIPPED, ("%d blocks are marked not run (at most %d):\n%s")
      :format(#skipped, readme.MAX_SKIPPED, table.concat(names, "\n")))
  end)

  for _, step in ipairs(plan()) do
    if step.nginx then
      local nginx_block, sh_block = step.nginx, step.sh
      runnable = runnable + (sh_block and 2 or 1)
      local name = readme.where(nginx_block) .. (sh_block and (" with " .. readme.where(sh_block)) or "")
      it(name .. " #nginx", function()
        ran = ran + (sh_block and 2 or 1)
        local mock, env = readme.start_mock()
        finally(function()
          mock:cleanup()
        end)
        local server, why = readme.start_nginx(nginx_block, env)
        assert(server, why)
        local problem
        local ok, err = pcall(function()
          if sh_block then
            problem = readme.run_sh(sh_block, { env = env, subst = server:substitutions() })
          end
        end)
        local log_problem = server:finish()
        assert(ok, err)
        assert(not problem, problem)
        assert(not log_problem, log_problem)
      end)
    else
      local block = step.block
      runnable = runnable + 1
      it(readme.where(block), function()
        ran = ran + 1
        local problem
        if block.lang == "lua" then
          problem = readme.run_lua(block)
        else
          problem = readme.run_sh(block)
        end
        assert(not problem, problem)
      end)
    end
  end
end)
