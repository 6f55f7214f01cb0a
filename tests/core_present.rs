//! The present path against the device model: only the dirty regions change on the host,
//! only they are transferred, rotation maps pixels where Windows expects them, and a bad
//! rect changes nothing.

use viogpu_common::blit::{rotate_rect, Point, Rect, Rotation, Surface};
use viogpu_common::framebuffer::AllocPolicy;
use viogpu_common::present::{
    copy_into_framebuffer, dirty_copy_order, present, source_rows, MoveRect, MAX_RECTS,
};
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::scanout::Scanout;
use viogpu_common::Error;
use virtio_gpu_model::testbed::Testbed;
use virtio_gpu_model::GuestMemoryHal;

const BACKGROUND: u32 = 0x0010_1010;
const W: u32 = 320;
const H: u32 = 200;
const ROTATIONS: [Rotation; 4] = [
    Rotation::Identity,
    Rotation::Rotate90,
    Rotation::Rotate180,
    Rotation::Rotate270,
];

/// A source surface whose every pixel is distinct.
fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            bytes.extend_from_slice(&source_pixel(x, y).to_le_bytes());
        }
    }
    bytes
}

fn source_pixel(x: u32, y: u32) -> u32 {
    0x0080_0000 | (y << 9) | x
}

/// Where source pixel (x, y) of a `w` x `h` desktop lands in the framebuffer.
fn to_framebuffer(x: u32, y: u32, rotation: Rotation, w: u32, h: u32) -> (u32, u32) {
    match rotation {
        Rotation::Identity => (x, y),
        Rotation::Rotate90 => (y, w - 1 - x),
        Rotation::Rotate180 => (w - 1 - x, h - 1 - y),
        Rotation::Rotate270 => (h - 1 - y, x),
    }
}

struct Screen {
    bed: Testbed,
    scanout: Scanout<GuestMemoryHal>,
}

impl Screen {
    /// A framebuffer for a `W` x `H` desktop under `rotation`, cut into many small bands so
    /// that rects cross band boundaries.
    fn new(rotation: Rotation) -> Self {
        let bed = Testbed::new();
        let policy = AllocPolicy {
            max_chunk: 16 << 10,
            min_chunk: 4 << 10,
            max_entries: 4096,
            whole_pages: false,
        };
        let mut scanout = Scanout::new(0, policy);
        let (fw, fh) = rotation.framebuffer_size(W, H);
        let mut ids = ResourceIdAllocator::new(16);
        scanout
            .set_mode(&bed.gpu, &mut ids, fw, fh, BACKGROUND)
            .unwrap();
        assert!(scanout.current().unwrap().backing().entry_count() > 10);
        bed.backend.lock().clear_logs();
        Self { bed, scanout }
    }

    fn present(
        &mut self,
        src: &[u8],
        moves: &[MoveRect],
        dirty: &[Rect],
        rotation: Rotation,
    ) -> Result<(), Error> {
        let surface = Surface::new(src, W, H, W * 4).unwrap();
        let fb = self.scanout.current_mut().unwrap();
        present(&self.bed.gpu, fb, &surface, moves, dirty, rotation).map(|_| ())
    }

    fn host_pixel(&self, x: u32, y: u32) -> u32 {
        self.bed.backend.lock().pixel(0, x, y).unwrap()
    }
}

fn inside(r: &Rect, x: u32, y: u32) -> bool {
    (x as i32) >= r.left && (x as i32) < r.right && (y as i32) >= r.top && (y as i32) < r.bottom
}

/// Checks that the host shows the pattern inside `dirty` and the background elsewhere.
fn assert_shows_dirty(screen: &Screen, dirty: &[Rect], rotation: Rotation) {
    for y in 0..H {
        for x in 0..W {
            let (fx, fy) = to_framebuffer(x, y, rotation, W, H);
            let expected = if dirty.iter().any(|r| inside(r, x, y)) {
                source_pixel(x, y)
            } else {
                BACKGROUND
            };
            assert_eq!(
                screen.host_pixel(fx, fy),
                expected,
                "source ({x},{y}) at framebuffer ({fx},{fy}), {rotation:?}"
            );
        }
    }
}

fn check_dirty_rects(rotation: Rotation) {
    let mut screen = Screen::new(rotation);
    let src = pattern(W, H);
    let dirty = [Rect::new(3, 5, 40, 61), Rect::new(250, 150, 320, 200)];
    screen.present(&src, &[], &dirty, rotation).unwrap();
    assert_shows_dirty(&screen, &dirty, rotation);
    // Only the dirty regions travelled: two transfers of exactly their size.
    let backend = screen.bed.backend.lock();
    let sent: u64 = backend
        .transfers()
        .map(|t| u64::from(t.rect.width) * u64::from(t.rect.height))
        .sum();
    assert_eq!(backend.transfers().len(), 2);
    assert_eq!(sent, 37 * 56 + 70 * 50);
}

#[test]
fn dirty_rects_unrotated() {
    check_dirty_rects(Rotation::Identity);
}

#[test]
fn dirty_rects_rotated_90() {
    check_dirty_rects(Rotation::Rotate90);
}

#[test]
fn dirty_rects_rotated_180() {
    check_dirty_rects(Rotation::Rotate180);
}

#[test]
fn dirty_rects_rotated_270() {
    check_dirty_rects(Rotation::Rotate270);
}

#[test]
fn a_move_rect_copies_its_destination_from_the_source() {
    let mut screen = Screen::new(Rotation::Identity);
    let src = pattern(W, H);
    let moves = [MoveRect {
        source: Point { x: 0, y: 0 },
        dest: Rect::new(100, 100, 164, 132),
    }];
    screen
        .present(&src, &moves, &[], Rotation::Identity)
        .unwrap();
    assert_eq!(screen.host_pixel(100, 100), source_pixel(100, 100));
    assert_eq!(screen.host_pixel(163, 131), source_pixel(163, 131));
    assert_eq!(screen.host_pixel(99, 100), BACKGROUND);
    assert_eq!(screen.host_pixel(164, 131), BACKGROUND);
}

#[test]
fn bad_rects_are_refused_and_change_nothing() {
    let mut screen = Screen::new(Rotation::Identity);
    let src = pattern(W, H);
    let bad_sets: [(&[MoveRect], &[Rect], Error); 4] = [
        (
            &[],
            &[Rect::new(0, 0, 10, 10), Rect::new(300, 190, 321, 200)],
            Error::OutOfBounds,
        ),
        (&[], &[Rect::new(-1, 0, 10, 10)], Error::OutOfBounds),
        (&[], &[Rect::new(10, 10, 5, 20)], Error::InvalidArgument),
        (
            &[MoveRect {
                source: Point { x: 300, y: 0 },
                dest: Rect::new(0, 0, 64, 64),
            }],
            &[],
            Error::OutOfBounds,
        ),
    ];
    for (moves, dirty, error) in bad_sets {
        assert_eq!(
            screen.present(&src, moves, dirty, Rotation::Identity),
            Err(error)
        );
    }
    assert_eq!(screen.host_pixel(0, 0), BACKGROUND);
    assert_eq!(screen.bed.backend.lock().transfers().len(), 0);
    // A rotation that does not fit the framebuffer's shape is refused too.
    assert_eq!(
        screen.present(&src, &[], &[Rect::new(0, 0, 8, 8)], Rotation::Rotate90),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn a_full_frame_present_sends_the_whole_frame_once() {
    let mut screen = Screen::new(Rotation::Identity);
    let src = pattern(W, H);
    screen
        .present(
            &src,
            &[],
            &[Rect::new(0, 0, W as i32, H as i32)],
            Rotation::Identity,
        )
        .unwrap();
    assert_eq!(screen.host_pixel(W - 1, H - 1), source_pixel(W - 1, H - 1));
    let backend = screen.bed.backend.lock();
    assert_eq!(backend.transfers().len(), 1);
    assert_eq!(backend.flushes().len(), 1);
}

/// The rows a present reads: the span of its non-empty dirty rects and move destinations,
/// clamped to the surface; a move's source point is not read; nothing for no rect.
#[test]
fn source_rows_span_the_rects_and_move_destinations() {
    let dirty = [Rect::new(3, 50, 40, 61), Rect::new(0, 120, 10, 130)];
    let moves = [MoveRect {
        source: Point { x: 0, y: 0 },
        dest: Rect::new(5, 40, 25, 45),
    }];
    assert_eq!(source_rows(&moves, &dirty, H), 40..130);
    assert_eq!(source_rows(&[], &dirty, H), 50..130);
    assert_eq!(source_rows(&[], &[], H), 0..0);
    // Empty and inverted rects read nothing; rects sticking out are clamped (the copy
    // rejects them against the whole surface).
    let odd = [
        Rect::new(5, 10, 5, 90),
        Rect::new(9, 80, 2, 20),
        Rect::new(0, -5, 4, 3),
        Rect::new(0, 190, 4, 260),
    ];
    assert_eq!(source_rows(&[], &odd[..2], H), 0..0);
    assert_eq!(source_rows(&[], &odd[2..], H), 0..H);
}

/// A surface that holds only the rows a present reads (as the driver locks them) gives the
/// same picture under every rotation; a rect that reaches a row the surface does not hold is
/// refused before anything is written.
#[test]
fn a_surface_holding_only_the_rows_read_presents_the_same() {
    for rotation in ROTATIONS {
        let mut screen = Screen::new(rotation);
        let src = pattern(W, H);
        let dirty = [Rect::new(3, 50, 40, 61), Rect::new(250, 150, 320, 197)];
        let rows = source_rows(&[], &dirty, H);
        let pitch = W * 4;
        let held = &src[(rows.start * pitch) as usize..(rows.end * pitch) as usize];
        let surface = Surface::rows(held, W, H, pitch, rows.clone()).unwrap();
        let fb = screen.scanout.current_mut().unwrap();
        present(&screen.bed.gpu, fb, &surface, &[], &dirty, rotation).unwrap();
        assert_shows_dirty(&screen, &dirty, rotation);
        // A rect with a row above the held ones: refused, and the rect before it (all held)
        // is not copied either.
        let before = screen.bed.backend.lock().transfers().len();
        let reaching = [Rect::new(0, 60, 8, 64), Rect::new(0, 49, 8, 52)];
        let other = pattern(W, H).iter().map(|b| !b).collect::<Vec<u8>>();
        let held = &other[(rows.start * pitch) as usize..(rows.end * pitch) as usize];
        let surface = Surface::rows(held, W, H, pitch, rows).unwrap();
        let fb = screen.scanout.current_mut().unwrap();
        assert_eq!(
            present(&screen.bed.gpu, fb, &surface, &[], &reaching, rotation),
            Err(Error::OutOfBounds)
        );
        assert_eq!(screen.bed.backend.lock().transfers().len(), before);
        let (fx, fy) = to_framebuffer(0, 60, rotation, W, H);
        assert_eq!(screen.host_pixel(fx, fy), BACKGROUND, "{rotation:?}");
    }
}

/// Dirty rects are copied from the top of the surface down, left to right within a row, and
/// in the OS's order where two start at the same point; more than `MAX_RECTS` is refused.
#[test]
fn dirty_rects_are_copied_top_down() {
    let dirty = [
        Rect::new(100, 90, 120, 99),
        Rect::new(5, 10, 9, 12),
        Rect::new(40, 90, 50, 95),
        Rect::new(5, 10, 7, 30),
        Rect::new(0, 0, 0, 0),
        Rect::new(0, 50, 10, 60),
        Rect::new(300, 10, 310, 11),
    ];
    let mut order = vec![7];
    dirty_copy_order(&dirty, &mut order).unwrap();
    assert_eq!(order, [4, 1, 3, 6, 5, 2, 0]);
    dirty_copy_order(&[], &mut order).unwrap();
    assert!(order.is_empty());
    let most = vec![Rect::new(0, 0, 1, 1); MAX_RECTS];
    dirty_copy_order(&most, &mut order).unwrap();
    assert_eq!(order.len(), MAX_RECTS);
    let too_many = vec![Rect::new(0, 0, 1, 1); MAX_RECTS + 1];
    assert_eq!(
        dirty_copy_order(&too_many, &mut order),
        Err(Error::InvalidArgument)
    );
    assert!(order.is_empty());
}

/// The copy order changes neither the picture nor what the present reports: a move rect and
/// overlapping and empty dirty rects, the dirty ones given bottom-up, show the source inside
/// their union under every rotation, and the framebuffer rects come back in the OS's order,
/// the move's first.
#[test]
fn copying_top_down_keeps_the_picture_and_the_os_order() {
    for rotation in ROTATIONS {
        let mut screen = Screen::new(rotation);
        let src = pattern(W, H);
        let moves = [MoveRect {
            source: Point { x: 0, y: 100 },
            dest: Rect::new(260, 40, 300, 60),
        }];
        let dirty = [
            Rect::new(200, 150, 300, 199),
            Rect::new(7, 7, 7, 40),
            Rect::new(30, 100, 90, 170),
            Rect::new(60, 20, 250, 120),
            Rect::new(0, 0, 33, 33),
        ];
        let surface = Surface::new(&src, W, H, W * 4).unwrap();
        let fb = screen.scanout.current_mut().unwrap();
        let written =
            copy_into_framebuffer(fb.backing_mut(), &surface, &moves, &dirty, rotation).unwrap();
        let shown: Vec<Rect> = moves.iter().map(|m| m.dest).chain(dirty).collect();
        let expected: Vec<Rect> = shown
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| rotate_rect(r, rotation, W, H))
            .collect();
        assert_eq!(written, expected, "{rotation:?}");
        screen.present(&src, &moves, &dirty, rotation).unwrap();
        assert_shows_dirty(&screen, &shown, rotation);
    }
}
