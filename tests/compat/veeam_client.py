"""Drives the server with the real `veeam` client (PyPI package veeam==0.1.5, GPLv3, used only
as an external test client, never vendored). Usage: veeam_client.py BASE_URL USER PASSWORD.

Exercises what the package can do: logon (?v=v1_4, requires exactly 201 + X-RestSvcSessionId),
jobs, one job as an entity, a job's sessions, its query-service helpers, and logout (which deletes
the first entry of /logonSessions). Its session (token header + cookie, JSON Accept) then drives a
stop task, as the reference's task-driving sequence describes.
"""

import sys
import time

from veeam.client import VeeamClient

base, user, password = sys.argv[1:4]
client = VeeamClient(base + "/api", user, password)

jobs = client.get_jobs()
by_name = {ref["Name"]: ref["UID"].split(":")[-1] for ref in jobs["Refs"]}
job = client.get_job(by_name["Quick"])
assert job["Type"] == "Job" and job["Name"] == "Quick", job

sessions = client.get_backup_sessions(by_name["Quick"])["BackupJobSessions"]
assert len(sessions) == 1 and sessions[0]["Result"] == "Success", sessions

day = client.get_jobs_1_day()
assert sorted(s["JobName"] for s in day) == ["Broken", "Quick", "Runs"], day
failed = client.get_failed_jobs()
assert [s["JobName"] for s in failed] == ["Broken"], failed
persistent = client.get_persistently_failed_jobs()
assert [s["JobName"] for s in persistent] == ["Broken"], persistent
assert len(client.get_successful_jobs("Quick", sessions[0]["CreationTimeUTC"].replace("Z", "").split(".")[0] + "Z")) <= 1

# The task-driving sequence with the client's own authenticated session.
running = [s for s in day if s["State"] != "Stopped"][0]
stop = next(link["Href"] for link in running["Links"] if link["Rel"] == "Stop")
accepted = client.session.post(stop)
assert accepted.status_code == 202, accepted.text
task = accepted.json()
assert task["Operation"] == "StopJobSession" and task["State"] == "Running", task
for _ in range(200):
    task = client.session.get(task["Href"]).json()
    if task["State"] == "Finished":
        break
    time.sleep(0.05)
assert task["State"] == "Finished" and task["Result"]["Success"] is True, task
delete = next(link["Href"] for link in task["Links"] if link["Rel"] == "Delete")
assert client.session.delete(delete).status_code == 204
assert client.session.get(task["Href"]).status_code == 404

client.logout()
assert client.session.get(base + "/api/jobs").status_code == 401, "logout ended the session"
print("veeam client: ok")
