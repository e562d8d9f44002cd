// Drives the official @linear/sdk against the Linear simulator, unchanged.
// Inputs come from the environment (set by the Rust test); prints one JSON
// summary line on success and exits non-zero with the error otherwise.
import { LinearClient } from "@linear/sdk";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing env ${name}`);
  return v;
};

const client = new LinearClient({ apiKey: env("LINEAR_API_KEY"), apiUrl: env("LINEAR_URL") });
const out = {};

const viewer = await client.viewer;
out.viewerId = viewer.id;
out.viewerApp = viewer.app;

const issue = await client.issue(env("ISSUE_ID"));
out.identifier = issue.identifier;
out.title = issue.title;
const labels = await issue.labels();
out.labels = labels.nodes.map((l) => l.name);
const state = await issue.state;
out.stateType = state.type;
const team = await issue.team;
out.teamKey = team.key;
const states = await team.states();
out.stateNames = states.nodes.map((s) => s.name);
const comments = await issue.comments();
out.commentBodies = comments.nodes.map((c) => c.body);

const activity = await client.createAgentActivity({
  agentSessionId: env("SESSION_ID"),
  content: { type: "thought", body: "Looking at the issue" },
});
out.activitySuccess = activity.success;
const created = await activity.agentActivity;
out.activityId = created.id;

const started = states.nodes.find((s) => s.type === "started");
const updated = await client.updateIssue(issue.id, { stateId: started.id });
out.updateSuccess = updated.success;
const after = await updated.issue;
out.newStateId = (await after.state).id;
out.startedStateId = started.id;

const comment = await client.createComment({ issueId: issue.id, body: "From the SDK" });
out.commentSuccess = comment.success;

const session = await client.agentSession(env("SESSION_ID"));
out.sessionStatus = session.status;
const acts = await session.activities();
out.activityCount = acts.nodes.length;

const sessionUpdate = await client.updateAgentSession(env("SESSION_ID"), {
  externalUrls: [{ label: "Codegen run", url: "https://codegen.com/agent/trace/1" }],
});
out.sessionUpdateSuccess = sessionUpdate.success;

console.log(JSON.stringify(out));
