"""Start-up hook of the fine-tune job processes the tests start with ``tests.trainer.job_faults.fault_env``:
installs the fault named in the environment before the job runs (never on any other PYTHONPATH)."""

import os

if os.environ.get("INPAINT_TEST_JOB_FAULT"):
    from tests.trainer.job_faults import install

    install(os.environ["INPAINT_TEST_JOB_FAULT"])
