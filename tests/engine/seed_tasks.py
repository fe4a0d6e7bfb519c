"""The seed's "Creating New Tasks" example, as a user module loaded with `--tasks`.

Unchanged but for its imports and one line that makes the first attempt fail, so the example's
own `self.retry(...)` is exercised (with a short countdown instead of 60 s).
"""

import logging

from omnisched_allinone.celery_app import AsyncTask, celery_app

logger = logging.getLogger(__name__)


@celery_app.task(bind=True, base=AsyncTask)
async def my_custom_task(self, param1: str, param2: int):
    """Custom task implementation"""

    task_id = self.request.id
    logger.info(f"🎯 Starting custom task {task_id}")

    try:
        if self.request.retries == 0:
            raise RuntimeError("the first attempt fails")
        # Your task logic here
        result = {
            "success": True,
            "data": "processed",
            "retries": self.request.retries,
            "param1": param1,
            "param2": param2,
        }
        return result

    except Exception as e:
        logger.error(f"❌ Task {task_id} failed: {e}")
        raise self.retry(exc=e, countdown=1, max_retries=3)
